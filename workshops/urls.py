from django.contrib.auth import views as auth_views
from django.urls import include, path

from workshops import views

app_patterns = [
    path("", views.workshop_home, name="home"),
    path("settings/", views.workshop_settings, name="settings"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("stage/", views.stage_set, name="stage"),
    path("invites/", views.invites, name="invites"),
    path("invites/<int:invite_id>/revoke/", views.invite_revoke, name="invite_revoke"),
    path("consent/", views.consent, name="consent"),
    path("withdraw/", views.withdraw, name="withdraw"),
    path("familiarize/", views.orientation, name="orientation"),
    path("familiarize/practice/", views.practice, name="practice"),
    path("familiarize/practice/<int:code_id>/delete/", views.practice_delete, name="practice_delete"),
    path("familiarize/readiness/", views.readiness, name="readiness"),
    path("familiarize/edit/", views.familiarize_edit, name="familiarize_edit"),
    path("texts/", views.workshop_texts, name="texts"),
    path("research/", views.research, name="research"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("w/new/", views.workshop_create, name="workshop_create"),
    path("join/<str:token>/", views.join, name="join"),
    path("return/", views.return_login, name="return_login"),
    path("return/<str:code>/", views.return_login, name="return_login_code"),
    path("account/", views.account, name="account"),
    path("account/code/", views.return_code_show, name="return_code_show"),
    path("w/<slug:slug>/", include((app_patterns, "workshops"))),
]
