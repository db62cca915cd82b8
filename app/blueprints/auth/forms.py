from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional


class RegistrationForm(FlaskForm):
    first_name = StringField(
        "First name",
        validators=[DataRequired("Tell us your first name."), Length(max=100)],
    )
    last_name = StringField("Last name", validators=[Optional(), Length(max=100)])
    contact_email = EmailField(
        "Email for programme news (optional)",
        validators=[Optional(), Email("Enter a valid email address."), Length(max=320)],
    )
    accept_terms = BooleanField(
        "I accept the programme terms",
        validators=[DataRequired("You must accept the programme terms to join.")],
    )
    accept_data_processing = BooleanField(
        "I consent to the processing of my personal data",
        validators=[DataRequired("You must consent to personal-data processing to join.")],
    )
    marketing_opt_in = BooleanField("Send me offers and news (you can stop at any time)")
