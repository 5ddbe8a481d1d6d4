from django.urls import include, path

from llm_gateway import views

app_name = "llm_gateway"

patterns = [
    path("", views.chat_index, name="index"),
    path("c/<int:conversation_id>/", views.conversation, name="conversation"),
    path("c/<int:conversation_id>/send/", views.message_send, name="send"),
    path("c/<int:conversation_id>/baseline/", views.conversation_baseline, name="baseline"),
    path("c/<int:conversation_id>/choose/<int:question_id>/", views.preference_choose, name="choose"),
    path("c/<int:conversation_id>/m/<int:message_id>/", views.message_fragment, name="message"),
    path("c/<int:conversation_id>/m/<int:message_id>/again/", views.answer_regenerate, name="regenerate"),
    path("models/", views.models_setup, name="models"),
    path("conversations/", views.conversations_all, name="conversations"),
    path("usage/", views.usage, name="usage"),
    path("export/messages.csv", views.export_messages, name="export_messages"),
    path("export/preferences.csv", views.export_preferences, name="export_preferences"),
]

urlpatterns = [
    path("w/<slug:slug>/interact/", include(patterns)),
]
