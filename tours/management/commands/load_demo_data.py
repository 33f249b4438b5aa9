"""Load a small Tbilisi tour business with real images, plus the drift a crash would leave."""

import io
import os
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from PIL import Image, ImageDraw

from tours.models import Company, Driver, Guide, Tour

DEMO_PASSWORD = "admin"
COMPANIES = ["Kartli Travel", "Caucasus Trails"]
TOURS = [
    ("Old Tbilisi Walking Tour", "old-tbilisi-walk", "Tbilisi", 1, "45.00", (196, 120, 60)),
    ("Kazbegi and Gergeti Trinity Church", "kazbegi-gergeti", "Kazbegi", 1, "120.00", (70, 110, 160)),
    ("Kakheti Wine Route", "kakheti-wine", "Kakheti", 2, "260.00", (120, 40, 70)),
    ("Mtskheta and Jvari Monastery", "mtskheta-jvari", "Mtskheta", 1, "60.00", (90, 140, 80)),
]
GUIDES = ["Nino Beridze", "Giorgi Kapanadze", "Tamar Lomidze"]
DRIVERS = [("Levan Gelashvili", "Mitsubishi Delica"), ("Dato Abashidze", "Toyota Land Cruiser")]
USERS = ["nino", "giorgi"]
ABANDONED_TOUR = ("Svaneti draft (deleted by raw SQL)", "svaneti-draft")
STRAY_FILES = ["uploads/tours/stray-crashed-upload.jpg", "uploads/guides/stray-rolled-back.jpg"]
STRAY_AGE = timedelta(days=2)


def jpeg(label, colour):
    """Return a small JPEG with a label, as an editor's photo would be."""
    image = Image.new("RGB", (480, 320), colour)
    ImageDraw.Draw(image).text((20, 140), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class Command(BaseCommand):
    help = (
        "Replace the demo data: companies, tours, guides, drivers and users with photos, plus "
        "orphaned media rows, stray files and a missing file for the cleanup sweep to find. "
        f"Creates the superuser admin/{DEMO_PASSWORD}."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            self.remove_previous()
            counts = self.create_business()
            counts.update(self.create_drift())
        self.backdate_stray_files()
        self.create_superuser()
        if options["verbosity"]:
            self.stdout.write("Demo data loaded:")
            for label, number in counts.items():
                self.stdout.write(f"  {label:<36} {number}")
            self.stdout.write(f"  superuser: admin / {DEMO_PASSWORD}")

    def remove_previous(self):
        # Deleting through the ORM lets the normal cleanup path remove the old photos.
        Tour.objects.filter(slug__in=[slug for _, slug, *_ in TOURS] + [ABANDONED_TOUR[1]]).delete()
        Company.objects.filter(name__in=COMPANIES).delete()
        Guide.objects.filter(full_name__in=GUIDES).delete()
        Driver.objects.filter(full_name__in=[name for name, _ in DRIVERS]).delete()
        get_user_model().objects.filter(username__in=USERS).delete()

    def create_business(self):
        companies = [
            Company.objects.create(name=name, email=f"info@{name.split()[0].lower()}.ge")
            for name in COMPANIES
        ]
        for company in companies:
            company.media.create(file=ContentFile(jpeg(company.name, (40, 40, 40)), name="logo.jpg"))
        for index, (title, slug, region, days, price, colour) in enumerate(TOURS):
            tour = Tour.objects.create(
                title=title,
                slug=slug,
                region=region,
                duration_days=days,
                price_gel=price,
                company=companies[index % len(companies)],
                is_published=True,
            )
            for shot in ("cover", "gallery"):
                tour.media.create(
                    file=ContentFile(jpeg(f"{title} ({shot})", colour), name=f"{slug}-{shot}.jpg")
                )
        for index, name in enumerate(GUIDES):
            guide = Guide.objects.create(
                full_name=name,
                languages="Georgian, English, Russian",
                company=companies[index % len(companies)],
            )
            guide.media.create(file=ContentFile(jpeg(name, (60, 90, 120)), name="portrait.jpg"))
        for name, vehicle in DRIVERS:
            driver = Driver.objects.create(full_name=name, vehicle=vehicle, seats=6, company=companies[0])
            driver.media.create(file=ContentFile(jpeg(vehicle, (100, 100, 100)), name="vehicle.jpg"))
        for username in USERS:
            user = get_user_model().objects.create_user(username, email=f"{username}@example.ge")
            user.media.create(file=ContentFile(jpeg(username, (150, 80, 150)), name="avatar.jpg"))
        return {
            "companies": len(COMPANIES),
            "tours": len(TOURS),
            "guides": len(GUIDES),
            "drivers": len(DRIVERS),
            "users": len(USERS),
        }

    def create_drift(self):
        """Leave what a crash or a raw SQL delete leaves: orphaned rows, stray and missing files."""
        title, slug = ABANDONED_TOUR
        abandoned = Tour.objects.create(title=title, slug=slug, price_gel="0")
        for shot in ("draft-1", "draft-2"):
            abandoned.media.create(file=ContentFile(jpeg(shot, (30, 30, 30)), name=f"{shot}.jpg"))
        with connection.cursor() as cursor:  # bypasses the ORM, as a raw SQL delete would
            cursor.execute(
                f"DELETE FROM {Tour._meta.db_table} WHERE id = %s",
                [Tour._meta.pk.get_db_prep_value(abandoned.pk, connection)],
            )
        for name in STRAY_FILES:
            default_storage.delete(name)
            default_storage.save(name, ContentFile(jpeg("stray", (200, 200, 200))))
        lost = Tour.objects.get(slug=TOURS[0][1]).media.order_by("original_name").last()
        default_storage.delete(lost.file.name)
        return {
            "orphaned media rows (owner gone)": 2,
            "stray files (no row, 2 days old)": len(STRAY_FILES),
            "rows whose file is missing": 1,
        }

    def backdate_stray_files(self):
        # Older than the sweep's grace period, as files left by a crash two days ago would be.
        then = time.time() - STRAY_AGE.total_seconds()
        for name in STRAY_FILES:
            os.utime(default_storage.path(name), (then, then))

    def create_superuser(self):
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
