from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from app.rules import ActivityKind, EventKind
from app.services.ledger import MAX_ADJUSTMENT


class StaffLoginForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired("Enter your email."), Email("Enter a valid email.")]
    )
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class AdjustmentForm(FlaskForm):
    amount = IntegerField(
        "Points (negative to deduct)",
        validators=[
            DataRequired("Enter a non-zero whole number of points."),
            NumberRange(-MAX_ADJUSTMENT, MAX_ADJUSTMENT, f"At most {MAX_ADJUSTMENT:,} points."),
        ],
    )
    reason = StringField(
        "Reason (the member sees it)",
        validators=[DataRequired("Give a reason."), Length(min=3, max=255)],
    )
    # Generated when the form is shown: a double submit carries the same key, so pays once.
    request_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class SimulationForm(FlaskForm):
    """An event to try against the offers, without writing anything."""

    member_id = IntegerField(
        "Member number",
        validators=[
            DataRequired("Give a member number."),
            NumberRange(1, 2**31 - 1, "No member has this number."),
        ],
    )
    kind = SelectField(
        "Event", choices=[SelectChoice(k.value, k.value.replace("_", " ")) for k in EventKind]
    )
    network = StringField("Network", default="vk", validators=[DataRequired(), Length(max=32)])
    group_id = StringField("Group", validators=[Optional(), Length(max=64)])
    object_id = StringField("Post", validators=[Optional(), Length(max=128)])
    activity = SelectField(
        "Activity",
        choices=[SelectChoice("", "-")] + [SelectChoice(a.value, a.value) for a in ActivityKind],
        default="",
    )
    activity_id = StringField("Comment id", validators=[Optional(), Length(max=128)])
    occurred_at = DateTimeLocalField(
        "When (programme time; empty: now)", validators=[Optional()], format="%Y-%m-%dT%H:%M"
    )
