"""Answers over an unchanged cluster reuse its plan: the Plan table gains a row only when the plan changes."""
import pytest

from inference.models import Plan
from inference.services import do_record_plan

pytestmark = pytest.mark.django_db

TWO_STAGES = [{"node": "alpha", "layers": [0, 12]}, {"node": "beta", "layers": [12, 30]}]
ONE_STAGE = [{"node": "alpha", "layers": [0, 30]}]


def test_recording_the_same_plan_again_returns_the_existing_row():
    first = do_record_plan("smollm2-135m-instruct", TWO_STAGES, 4096)
    again = do_record_plan("smollm2-135m-instruct", TWO_STAGES, 4096)
    assert again == first
    assert Plan.objects.count() == 1


def test_a_changed_plan_gets_a_new_row_that_names_the_one_it_replaces():
    first = do_record_plan("smollm2-135m-instruct", TWO_STAGES, 4096)
    replanned = do_record_plan("smollm2-135m-instruct", ONE_STAGE, 4096, replaces_id=first)
    assert replanned != first
    assert Plan.objects.get(pk=replanned).replaces_id == first
    assert do_record_plan("smollm2-135m-instruct", ONE_STAGE, 4096) == replanned
    assert Plan.objects.count() == 2


def test_the_same_stages_for_another_model_or_context_are_another_plan():
    do_record_plan("smollm2-135m-instruct", TWO_STAGES, 4096)
    do_record_plan("smollm2-135m-instruct", TWO_STAGES, 2048)
    do_record_plan("another-model", TWO_STAGES, 4096)
    assert Plan.objects.count() == 3
