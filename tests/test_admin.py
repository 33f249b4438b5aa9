import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from media_app.models import CleanupRun, Media
from tests import factories

pytestmark = pytest.mark.django_db

INLINE_PREFIX = "media_app-media-content_type-object_id"


@pytest.mark.parametrize(
    "model",
    ["tours.tour", "tours.company", "tours.guide", "tours.driver", "accounts.user", "media_app.media"],
)
def test_every_changelist_renders(admin_client, model):
    app_label, model_name = model.split(".")
    factories.media(factories.tour())

    response = admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))

    assert response.status_code == 200


def test_an_owner_page_shows_its_media_inline_with_a_thumbnail(admin_client):
    tour = factories.tour()
    media = factories.media(tour, name="narikala.jpg")

    response = admin_client.get(reverse("admin:tours_tour_change", args=[tour.pk]))

    assert response.status_code == 200
    assert f'src="{media.file.url}"' in response.content.decode()


def test_uploading_through_the_inline_stores_the_file(admin_client, media_root):
    tour = factories.tour(title="Kakheti", slug="kakheti")
    data = {
        "title": "Kakheti",
        "slug": "kakheti",
        "price_gel": "100.00",
        "duration_days": 1,
        "difficulty": "easy",
        "max_group_size": 12,
        f"{INLINE_PREFIX}-TOTAL_FORMS": 1,
        f"{INLINE_PREFIX}-INITIAL_FORMS": 0,
        f"{INLINE_PREFIX}-0-file": SimpleUploadedFile("vineyard.jpg", b"grapes", content_type="image/jpeg"),
        f"{INLINE_PREFIX}-0-caption": "Vineyard",
    }

    response = admin_client.post(reverse("admin:tours_tour_change", args=[tour.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    media = tour.media.get()
    assert media.file.name.startswith("uploads/tours/") and media.file.name.endswith("-vineyard.jpg")
    assert (media_root / media.file.name).read_bytes() == b"grapes"


def test_media_changelist_shows_owner_size_type_and_thumbnail(admin_client):
    tour = factories.tour(title="Old Tbilisi")
    media = factories.media(tour, name="baths.jpg", content=b"x" * 2048)

    html = admin_client.get(reverse("admin:media_app_media_changelist")).content.decode()

    assert reverse("admin:tours_tour_change", args=[tour.pk]) in html
    assert "Old Tbilisi" in html
    assert "2.0\xa0KB" in html
    assert "image/jpeg" in html
    assert f'<img src="{media.file.url}"' in html


def test_media_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    for kind in factories.OWNERS.values():
        factories.media(kind())
    url = reverse("admin:media_app_media_changelist")
    with django_assert_max_num_queries(30) as few:
        admin_client.get(url)
    for kind in factories.OWNERS.values():
        for _ in range(5):
            factories.media(kind())

    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client.get(url)


def test_a_missing_owner_is_shown_as_missing(admin_client):
    tour = factories.tour()
    factories.media(tour)
    Media.objects.update(object_id="00000000-0000-0000-0000-000000000000")

    html = admin_client.get(reverse("admin:media_app_media_changelist")).content.decode()

    assert "missing (00000000-0000-0000-0000-000000000000)" in html


def test_delete_selected_owners_deletes_their_files(
    admin_client, media_root, django_capture_on_commit_callbacks
):
    tours = [factories.tour() for _ in range(2)]
    paths = [media_root / factories.media(tour).file.name for tour in tours]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:tours_tour_changelist"),
            {"action": "delete_selected", "_selected_action": [str(t.pk) for t in tours], "post": "yes"},
        )

    assert response.status_code == 302
    assert not Media.objects.exists()
    assert not any(path.exists() for path in paths)


@pytest.mark.django_db(transaction=True)
def test_run_history_is_listed_shown_and_read_only(admin_client, media_root):
    from media_app.cleanup import run_cleanup

    result = run_cleanup()

    assert admin_client.get(reverse("admin:media_app_cleanuprun_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:media_app_cleanuprun_change", args=[result.run_id]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert result.run_id in page.content.decode() or str(result.status) in page.content.decode()
    assert admin_client.get(reverse("admin:media_app_cleanuprun_add")).status_code == 403


# -- "owner missing" and the action on selected media --------------------------------------------


@pytest.fixture
def orphan_and_live(media_root):
    """An orphaned media row (its owner deleted behind the ORM's back) and a live one."""
    gone = factories.tour()
    orphan = factories.media(gone, name="orphan.jpg")
    live = factories.media(factories.company(), name="live.jpg")
    factories.delete_behind_the_orms_back(gone)
    return orphan, live


def changelist_rows(client, **params):
    response = client.get(reverse("admin:media_app_media_changelist"), params)
    assert response.status_code == 200
    return {media.pk for media in response.context["cl"].result_list}


def test_owner_missing_filter_shows_only_orphaned_or_only_owned_media(admin_client, orphan_and_live):
    orphan, live = orphan_and_live

    assert changelist_rows(admin_client, owner_missing="yes") == {orphan.pk}
    assert changelist_rows(admin_client, owner_missing="no") == {live.pk}
    assert changelist_rows(admin_client) == {orphan.pk, live.pk}


def clean_up_selected(client, media, **kwargs):
    return client.post(
        reverse("admin:media_app_media_changelist"),
        {"action": "clean_up_orphaned_selection", "_selected_action": [str(m.pk) for m in media]},
        **kwargs,
    )


def page_messages(response):
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db(transaction=True)
def test_the_action_removes_the_selected_orphans_and_keeps_live_media(
    admin_client, orphan_and_live, media_root
):
    orphan, live = orphan_and_live

    response = clean_up_selected(admin_client, [orphan, live], follow=True)

    assert list(Media.objects.values_list("pk", flat=True)) == [live.pk]
    assert not (media_root / orphan.file.name).exists()
    assert (media_root / live.file.name).exists()
    assert page_messages(response) == [
        "Removed 1 of the 2 selected media whose owner is gone, with 1 files; kept 1."
    ]
    run = CleanupRun.objects.get()
    assert (run.trigger, run.status, run.options["selected_media"]) == ("admin", "ok", 2)


@pytest.mark.django_db(transaction=True)
def test_the_filter_shows_exactly_what_the_action_removes(admin_client, orphan_and_live):
    from django.contrib.contenttypes.models import ContentType
    from django.core.files.base import ContentFile

    stale_type = ContentType.objects.create(app_label="gone", model="thing")
    stale = Media.objects.create(
        content_type=stale_type, object_id=uuid.uuid4(), file=ContentFile(b"x", name="stale.jpg")
    )
    shown = changelist_rows(admin_client, owner_missing="yes")

    clean_up_selected(admin_client, Media.objects.all())

    assert shown == {orphan_and_live[0].pk}
    assert set(Media.objects.values_list("pk", flat=True)) == {orphan_and_live[1].pk, stale.pk}


@pytest.mark.django_db(transaction=True)
def test_the_action_reports_a_lock_held_by_another_run(admin_client, orphan_and_live):
    from media_app.cleanup.lock import cleanup_lock

    with cleanup_lock("default") as acquired:
        assert acquired
        response = clean_up_selected(admin_client, orphan_and_live, follow=True)

    assert Media.objects.count() == 2
    assert page_messages(response) == [
        "Another cleanup run holds the lock; nothing was done. Try again when it has finished."
    ]


@pytest.mark.django_db(transaction=True)
def test_the_action_refuses_a_selection_too_large_for_a_request(admin_client, orphan_and_live, monkeypatch):
    monkeypatch.setattr("media_app.admin.MAX_SELECTION", 1)

    response = clean_up_selected(admin_client, orphan_and_live, follow=True)

    assert Media.objects.count() == 2
    assert not CleanupRun.objects.exists()
    assert "Select at most 1 media" in page_messages(response)[0]


def staff_user(*permissions):
    """A staff user with exactly these permissions (codenames of media_app)."""
    from django.contrib.auth.models import Permission

    user = factories.user(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="media_app", codename__in=permissions)
    )
    return user


def test_the_action_is_offered_only_to_users_who_may_delete_media(client, orphan_and_live):
    url = reverse("admin:media_app_media_changelist")
    client.force_login(staff_user("view_media"))
    assert "clean_up_orphaned_selection" not in client.get(url).content.decode()

    client.force_login(staff_user("view_media", "delete_media"))
    assert "clean_up_orphaned_selection" in client.get(url).content.decode()
