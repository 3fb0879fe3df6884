from django.urls import path

from . import views

app_name = "netbox_chatbox-api"

urlpatterns = [
    path("models/", views.ModelListView.as_view(), name="models"),
    path("preference/", views.PreferenceView.as_view(), name="preference"),
]
