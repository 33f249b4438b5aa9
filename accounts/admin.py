from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from media_app.admin import MediaInline

from .models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [MediaInline]
