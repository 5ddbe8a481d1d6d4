from django.contrib import admin

from coding.models import Annotation, AnnotationCode, Attribute, Code

admin.site.register(Code, list_display=("text", "membership", "workshop", "created_at"), list_filter=("workshop",),
                    search_fields=("text",))
admin.site.register(Annotation, list_display=("id", "membership", "message", "start", "end", "created_at"),
                    raw_id_fields=("message",))
admin.site.register(AnnotationCode, list_display=("id", "annotation", "code", "created_at"),
                    raw_id_fields=("annotation", "code"))
admin.site.register(Attribute, list_display=("name", "membership", "workshop"), filter_horizontal=("codes",))
