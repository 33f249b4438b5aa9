from django.contrib import admin
from django.db import models

from media_app.admin import MediaInline

from .models import Company, Driver, Guide, Tour


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    # Django 6 assumes https for a website typed without a scheme; assume it now.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "email", "phone", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "email", "phone"]
    inlines = [MediaInline]


@admin.register(Tour)
class TourAdmin(admin.ModelAdmin):
    list_display = ["title", "company", "region", "duration_days", "difficulty", "price_gel", "is_published"]
    list_filter = ["is_published", "difficulty", "region", "company"]
    search_fields = ["title", "description", "region"]
    prepopulated_fields = {"slug": ["title"]}
    list_select_related = ["company"]
    inlines = [MediaInline]


@admin.register(Guide)
class GuideAdmin(admin.ModelAdmin):
    list_display = ["full_name", "company", "languages", "phone", "is_active"]
    list_filter = ["is_active", "company"]
    search_fields = ["full_name", "languages", "license_number"]
    list_select_related = ["company"]
    inlines = [MediaInline]


@admin.register(Driver)
class DriverAdmin(admin.ModelAdmin):
    list_display = ["full_name", "company", "vehicle", "vehicle_plate", "seats", "is_active"]
    list_filter = ["is_active", "company"]
    search_fields = ["full_name", "vehicle", "vehicle_plate", "license_number"]
    list_select_related = ["company"]
    inlines = [MediaInline]
