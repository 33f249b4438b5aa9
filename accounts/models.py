import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models


class User(AbstractUser):
    """A person who signs in: staff, guides' managers, customers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    media = GenericRelation("media_app.Media")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
