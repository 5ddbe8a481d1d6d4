from django.urls import path

from workshops.consumers import WorkshopEventsConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:slug>/events/", WorkshopEventsConsumer.as_asgi()),
]
