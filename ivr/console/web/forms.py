"""WTForms for the console.  CSRF is checked app-wide by CSRFProtect; the forms add validation
and render labelled fields.  Templates write their own <button>s, which wrap on narrow screens."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from ivr.console.accounts import MIN_PASSWORD, ROLES
from ivr.console.web.formatting import ROLE_NAMES

ROLE_CHOICES = [SelectChoice(role, f"{ROLE_NAMES[role]} {role}") for role in ROLES]
_REQUIRED = "必填"
_NEW_PASSWORD = {"autocomplete": "new-password"}


class LoginForm(FlaskForm):
    username = StringField("用户名", [InputRequired(_REQUIRED), Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"})
    password = PasswordField("密码", [InputRequired(_REQUIRED), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})


class NewAccountForm(FlaskForm):
    username = StringField("用户名", [InputRequired(_REQUIRED), Length(max=64)],
                           description="小写字母开头，3–64 个小写字母、数字或 _ . -",
                           render_kw={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"})
    role = SelectField("角色", choices=ROLE_CHOICES)
    phone = StringField("本人电话", [Optional(), Length(max=20)],
                        description="来电会转接到这个号码：手机号或上海固话，可以以后再填",
                        render_kw={"autocomplete": "off", "inputmode": "tel"})
    password = PasswordField("临时密码", [InputRequired(_REQUIRED), Length(min=MIN_PASSWORD, max=256,
                                                                       message=f"至少 {MIN_PASSWORD} 个字符")],
                             description=f"至少 {MIN_PASSWORD} 个字符，当面或电话告诉本人", render_kw=_NEW_PASSWORD)


class PasswordResetForm(FlaskForm):
    password = PasswordField("新临时密码", [InputRequired(_REQUIRED), Length(min=MIN_PASSWORD, max=256,
                                                                          message=f"至少 {MIN_PASSWORD} 个字符")],
                             render_kw=_NEW_PASSWORD)


class AccountChangeForm(FlaskForm):
    role = SelectField("角色", choices=ROLE_CHOICES)
    phone = StringField("新电话", [Optional(), Length(max=20)], description="留空则不改",
                        render_kw={"autocomplete": "off", "inputmode": "tel"})
