from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# Pages later apps register under these URL names join the navigation when they exist.
NAVIGATION = [(_("Dashboard"), "dashboard"), (_("Ask"), "ask"), (_("Search"), "search"), (_("Sources"), "sources")]


def navigation(request):
    items = []
    for label, url_name in NAVIGATION:
        try:
            items.append({"label": label, "url": reverse(url_name)})
        except NoReverseMatch:
            continue
    if request.user.is_authenticated and request.user.is_staff:
        items.append({"label": _("Admin"), "url": reverse("admin:index")})
    for item in items:
        # The dashboard is "/", which every path starts with: it is current only on itself.
        item["current"] = request.path == item["url"] or (item["url"] != "/" and request.path.startswith(item["url"]))
    return {"navigation": items}
