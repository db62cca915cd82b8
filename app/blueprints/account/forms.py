from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional


class ProfileForm(FlaskForm):
    first_name = StringField(
        "First name", validators=[DataRequired("Tell us your first name."), Length(max=100)]
    )
    last_name = StringField("Last name", validators=[Optional(), Length(max=100)])
    contact_email = EmailField(
        "Email for programme news",
        validators=[Optional(), Email("Enter a valid email address."), Length(max=320)],
    )
    marketing_opt_in = BooleanField("Send me offers and news")


class DeleteAccountForm(FlaskForm):
    confirm = BooleanField(
        "I understand that my account, my linked profiles and my points will be gone for good",
        validators=[DataRequired("Tick the box to confirm that you want to delete the account.")],
    )
