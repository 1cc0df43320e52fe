from hotline_harness import heard


def test_registered_caller_checks_status_by_keys(hotline) -> None:
    call = hotline.call("+8613800000002")
    assert "普通话，请按1" in heard(call)
    call.press("1")
    assert hotline.step(call) == "main_menu"
    call.press("1")
    assert hotline.step(call) == "ask_id"
    call.press("567*")
    text = heard(call)
    assert "公积金" in text and "要补材料" in text and "房屋租赁合同" in text
