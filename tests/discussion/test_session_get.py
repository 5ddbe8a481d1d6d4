"""services.session_get: the session loaded with the workshop is used; else it is read or made."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from discussion import services
from discussion.models import Session
from tests.factories import facilitator_of, make_workshop
from workshops.models import Membership


@pytest.mark.django_db
def test_a_session_loaded_with_the_workshop_costs_no_query_and_a_missing_one_is_made():
    workshop = make_workshop(stage="discuss")
    facilitator = facilitator_of(workshop)
    Session.objects.filter(workshop=workshop).delete()
    # No session yet: select_related caches "none", and session_get still makes it.
    member = Membership.objects.select_related("workshop", "workshop__discussion").get(pk=facilitator.pk)
    made = services.session_get(workshop=member.workshop)
    assert made.pk and Session.objects.filter(workshop=workshop).count() == 1
    services.session_set_segment(workshop=workshop, by=facilitator, segment=2)
    member = Membership.objects.select_related("workshop", "workshop__discussion").get(pk=facilitator.pk)
    with CaptureQueriesContext(connection) as queries:
        session = services.session_get(workshop=member.workshop)
    assert not queries.captured_queries and session.pk == made.pk and session.segment == 2
    # Loaded without it: read.
    member = Membership.objects.select_related("workshop").get(pk=facilitator.pk)
    with CaptureQueriesContext(connection) as queries:
        assert services.session_get(workshop=member.workshop).segment == 2
    assert len(queries.captured_queries) == 1
