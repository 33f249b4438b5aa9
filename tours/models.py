import uuid

from django.contrib.contenttypes.fields import GenericRelation
from django.db import models


class Company(models.Model):
    """A tour operator or transport company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    website = models.URLField(blank=True)
    address = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    media = GenericRelation("media_app.Media")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self):
        return self.name


class Tour(models.Model):
    """A bookable tour, optionally run by a company."""

    class Difficulty(models.TextChoices):
        EASY = "easy", "Easy"
        MODERATE = "moderate", "Moderate"
        HARD = "hard", "Hard"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="tours"
    )
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    region = models.CharField(max_length=100, blank=True, help_text="e.g. Kakheti, Kazbegi")
    duration_days = models.PositiveSmallIntegerField(default=1)
    difficulty = models.CharField(max_length=10, choices=Difficulty.choices, default=Difficulty.EASY)
    price_gel = models.DecimalField("price (GEL)", max_digits=8, decimal_places=2)
    max_group_size = models.PositiveSmallIntegerField(default=12)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    media = GenericRelation("media_app.Media")

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Guide(models.Model):
    """A tour guide, optionally employed by a company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="guides"
    )
    full_name = models.CharField(max_length=200)
    languages = models.CharField(max_length=200, blank=True, help_text="e.g. Georgian, English")
    phone = models.CharField(max_length=40, blank=True)
    license_number = models.CharField(max_length=50, blank=True)
    bio = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    media = GenericRelation("media_app.Media")

    class Meta:
        ordering = ["full_name"]

    def __str__(self):
        return self.full_name


class Driver(models.Model):
    """A driver and vehicle, optionally working for a company."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="drivers"
    )
    full_name = models.CharField(max_length=200)
    phone = models.CharField(max_length=40, blank=True)
    license_number = models.CharField(max_length=50, blank=True)
    vehicle = models.CharField(max_length=100, blank=True, help_text="e.g. Mitsubishi Delica")
    vehicle_plate = models.CharField(max_length=20, blank=True)
    seats = models.PositiveSmallIntegerField(default=4)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    media = GenericRelation("media_app.Media")

    class Meta:
        ordering = ["full_name"]

    def __str__(self):
        return self.full_name
