from django.contrib import admin

from coding.models import Annotation, AnnotationCode, Attribute, Code


@admin.register(Code)
class CodeAdmin(admin.ModelAdmin):
    list_display = ("text", "membership", "workshop", "created_at")
    list_filter = ("workshop",)
    search_fields = ("text",)


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "membership", "message", "start", "end", "created_at")
    raw_id_fields = ("message",)


@admin.register(AnnotationCode)
class AnnotationCodeAdmin(admin.ModelAdmin):
    list_display = ("id", "annotation", "code", "created_at")
    raw_id_fields = ("annotation", "code")


@admin.register(Attribute)
class AttributeAdmin(admin.ModelAdmin):
    list_display = ("name", "membership", "workshop")
    filter_horizontal = ("codes",)
