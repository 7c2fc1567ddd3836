"""ASGI entry point: Django for everything, the akgate stack in front of ``/v1``.

Run it from ``examples/django_project``::

    pip install -e '../..[server,django]'
    export AKGATE_KEY=$(akgate keys create --name me)
    uvicorn chatsite.asgi:application
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()  # first: it runs django.setup()

from akgate.contrib.django import mount  # noqa: E402

# /v1/... -> auth -> validation -> routing -> [Responses adapter ->] Django (the chat view);
# every other path -> Django directly. Django serves the model "django-echo".
application = mount(django_application, models=["django-echo"])
