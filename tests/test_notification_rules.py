"""flows/notifications.yaml is checked when the service starts: a mistake names the file and
the field, and the service does not start with it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.notify.rules import RulesError, load_rules

FLOWS = Path(__file__).resolve().parent.parent / "flows"


def test_the_shipped_rules_load() -> None:
    rules = load_rules(FLOWS)
    assert rules.notify_on == {"need_documents", "ready_for_pickup", "paid", "rejected"}
    assert rules.tries >= 1 and rules.per_week >= 1


@pytest.mark.parametrize("line, says", [
    ("notify_on: [need_documents, lost_in_post]", "notifications.yaml: notify_on: Value error, unknown status ['lost_in_post']"),
    ("notify_on: [in_review]", "nothing is asked of the person"),
    ('call_hours: "07:00-09:00"', "never call before 08:00 or after 20:00"),
    ('call_hours: "11:00-10:00"', "ends before it starts"),
    ("tries: 0", "notifications.yaml: tries: Input should be greater than or equal to 1"),
    ("per_week: many", "notifications.yaml: per_week"),
    ("reviewed: {by: 项目组}", "notifications.yaml: reviewed.date: Field required"),
    ("ring_forever: true", "notifications.yaml: ring_forever: Extra inputs are not permitted"),
])
def test_a_mistake_names_the_file_and_the_field(tmp_path: Path, line: str, says: str) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    path = flows / "notifications.yaml"
    key = line.split(":", 1)[0]
    kept = [row for row in path.read_text(encoding="utf-8").splitlines() if not row.startswith(key + ":")]
    path.write_text("\n".join(kept + [line]) + "\n", encoding="utf-8")
    with pytest.raises(RulesError) as refused:
        load_rules(flows)
    assert says in str(refused.value), str(refused.value)


def test_the_service_does_not_start_with_broken_rules(make_hotline, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    (flows / "notifications.yaml").write_text("notify_on: []\n", encoding="utf-8")
    with pytest.raises(RulesError, match="notifications.yaml: notify_on"):
        make_hotline(FLOWS_DIR=str(flows))
