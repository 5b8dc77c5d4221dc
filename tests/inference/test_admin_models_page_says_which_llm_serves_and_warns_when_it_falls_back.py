"""The admin's Models page says which LLM serves grounded answers and plain chat, whether each LLM runs now, warns
when the live nodes left too few to run the one it would rather be (and why), and marks an LLM for a use."""
import html

from inference.models import ModelEntry, ModelMark
from tests.inference.llm_nodes import QWEN, SMOLLM2, cluster_redis_db, llm_nodes  # noqa: F401  (fixtures)

PAGE = "/admin/inference/modelentry/"


def test_the_models_page_names_the_serving_llms_and_warns_once_nodes_left(llm_nodes, admin_client):
    llm_nodes.announce("alpha", "beta", "gamma")
    page = html.unescape(admin_client.get(PAGE).content.decode())
    assert f"Grounded answers (kotatsu): {QWEN} (auto)" in page and f"Plain chat: {QWEN} (auto)" in page
    assert "falling back" not in page
    assert "yes, ~" in page

    llm_nodes.leave("gamma")
    page = html.unescape(admin_client.get(PAGE).content.decode())
    assert f"Grounded answers (kotatsu): {SMOLLM2} (auto), falling back: {QWEN} cannot run now: the model needs " in page
    assert "the 2 live nodes offer" in page


def test_an_llm_is_marked_for_grounded_answers_from_the_models_page(llm_nodes, admin_client):
    llm_nodes.announce("alpha", "beta", "gamma")
    smollm2 = ModelEntry.objects.get(name=SMOLLM2)

    response = admin_client.post(
        PAGE, {"action": "mark_for_grounded_answers", "_selected_action": [smollm2.pk]}, follow=True
    )

    assert f"Marked {SMOLLM2} for grounded answers (kotatsu)." in html.unescape(response.content.decode())
    assert ModelMark.objects.get(use=ModelMark.ANSWERS).model == smollm2
    page = html.unescape(admin_client.get(PAGE).content.decode())
    assert f"Grounded answers (kotatsu): {SMOLLM2} (marked)" in page and f"Plain chat: {QWEN} (auto)" in page
