import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from media_app.models import Media
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


def test_an_owner_page_shows_its_media_inline_with_a_thumbnail(admin_client, backend):
    tour = factories.tour()
    media = factories.media(tour, name="narikala.jpg")

    response = admin_client.get(reverse("admin:tours_tour_change", args=[tour.pk]))

    assert response.status_code == 200
    # On S3 the link is signed to expire, and its signature changes with the clock.
    assert f'src="{media.file.url.split("?")[0]}' in response.content.decode()


def test_uploading_through_the_inline_stores_the_file(admin_client, backend):
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
    assert backend.read(media.file.name) == b"grapes"


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
    admin_client, backend, django_capture_on_commit_callbacks
):
    tours = [factories.tour() for _ in range(2)]
    names = [factories.media(tour).file.name for tour in tours]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:tours_tour_changelist"),
            {"action": "delete_selected", "_selected_action": [str(t.pk) for t in tours], "post": "yes"},
        )

    assert response.status_code == 302
    assert not Media.objects.exists()
    assert backend.missing(names) == names


@pytest.mark.django_db(transaction=True)
def test_run_history_is_listed_shown_and_read_only(admin_client, media_root):
    from media_app.cleanup.engine import run_cleanup

    result = run_cleanup()

    assert admin_client.get(reverse("admin:media_app_cleanuprun_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:media_app_cleanuprun_change", args=[result.run_id]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert result.run_id in page.content.decode() or str(result.status) in page.content.decode()
    assert admin_client.get(reverse("admin:media_app_cleanuprun_add")).status_code == 403
