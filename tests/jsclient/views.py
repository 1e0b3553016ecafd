"""Render the test pages; each includes the bridge with ``{% static %}``, as a project would."""

from __future__ import annotations

from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.template import Context, Engine

#: The test project has no TEMPLATES setting; the pages need only ``{% static %}``.
ENGINE = Engine(
    dirs=[str(Path(__file__).resolve().parent / "templates")],
    libraries={"static": "django.templatetags.static"},
)
PAGES = ("harness", "docs_listen", "docs_demultiplex", "module")


def page(request: HttpRequest, name: str) -> HttpResponse:
    if name not in PAGES:
        raise Http404(f"No test page {name!r}; the pages are {', '.join(PAGES)}")
    return HttpResponse(ENGINE.get_template(f"jsclient/{name}.html").render(Context()))
