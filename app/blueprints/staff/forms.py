from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange

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
