"""/v1/models lists "kotatsu", the catalog LLMs the live nodes can run now and the embedding model: the 1.5B while
three small nodes hold it together, no longer once one of them leaves; never a model that is no LLM."""
import pytest
from django.contrib.auth import get_user_model

from assistant.services import do_create_api_key
from tests.inference.llm_nodes import QWEN, SMOLLM2, cluster_redis_db, llm_nodes  # noqa: F401  (fixtures)


@pytest.fixture
def listed(client):
    _, raw_key = do_create_api_key(get_user_model().objects.create_user("erin", password="x" * 12))

    def listing():
        response = client.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        assert response.status_code == 200
        return [model["id"] for model in response.json()["data"]]

    return listing


def test_the_1_5b_is_listed_while_the_live_nodes_can_hold_it(llm_nodes, listed, settings):
    llm_nodes.announce("alpha", "beta", "gamma")
    assert listed() == ["kotatsu", QWEN, SMOLLM2, settings.INGEST_EMBEDDING_MODEL]

    llm_nodes.leave("gamma")
    assert listed() == ["kotatsu", SMOLLM2, settings.INGEST_EMBEDDING_MODEL]
