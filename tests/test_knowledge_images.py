"""Images reach a vision model as pictures and other models as their
description; GET /api/models says which models see images."""

import base64
import io

import pytest
from PIL import Image
from support.accounts import create_chat, register
from support.fake_ai_service import start_callback_service
from support.llmock import LLMock
from support.messages import get_message, idle, post_message
from support.sample_files import image_bytes
from support.uploads import processed, uploaded

from chatserver.config import DEFAULT_CONFIG, ConfigError, load_settings

VISION = '{"gpt-4o-mini": {"vision": true, "context_tokens": 128000}}'


@pytest.fixture(scope="module")
def llmock():
    server = LLMock()
    yield server
    server.stop()


async def model_client(make_client, llmock, **settings):
    llmock.script()
    return await make_client(OPENAI_BASE_URL=llmock.url + "/v1", OPENAI_MODEL="gpt-4o-mini",
                             OPENAI_MODELS=("text-only",), **settings)


async def ask_with_photo(client) -> dict:
    account = await register(client)
    chat = await create_chat(client, account)
    photo = await processed(client, account, await uploaded(client, account, image_bytes((1200, 600)), "photo.png"))
    posted = await post_message(client, account, chat["id"], "What is in the picture?", file_ids=[photo["id"]])
    await idle(client)
    return await get_message(client, account, posted["assistant_message"]["id"])


async def test_models_report_their_capabilities(make_client, llmock):
    client = await model_client(make_client, llmock, MODEL_CAPABILITIES=VISION)
    account = await register(client)
    body = await (await client.get("/api/models", headers=account.headers)).json()
    found = {m["id"]: m["capabilities"] for m in body["items"]}
    assert found["gpt-4o-mini"] == {"vision": True, "tools": True, "context_tokens": 128000}
    assert found["text-only"] == {"vision": False, "tools": True, "context_tokens": 8192}


async def test_a_vision_model_gets_the_image_as_a_scaled_data_url(make_client, llmock):
    client = await model_client(make_client, llmock, MODEL_CAPABILITIES=VISION, IMAGE_MAX_PIXELS=300)
    answer = await ask_with_photo(client)
    assert answer["status"] == "complete"
    text, picture = llmock.bodies()[-1]["messages"][-1]["content"]
    assert text["type"] == "text" and text["text"].endswith("What is in the picture?")
    assert picture["type"] == "image_url"
    head, _, data = picture["image_url"]["url"].partition(",")
    assert head in ("data:image/jpeg;base64", "data:image/png;base64")
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert image.size == (300, 150)


async def test_a_model_without_vision_gets_the_images_description(make_client, llmock):
    client = await model_client(make_client, llmock)
    await ask_with_photo(client)
    sent = llmock.bodies()[-1]["messages"][-1]["content"]
    assert isinstance(sent, str) and "--- photo.png ---\nPNG image, 1200x600 pixels" in sent


@pytest.mark.parametrize("value", ["[1]", '{"m": {"vision": "yes"}}', '{"m": {"colour": true}}', "{"])
def test_model_capabilities_that_are_not_the_documented_json_are_refused(value):
    with pytest.raises(ConfigError, match="MODEL_CAPABILITIES"):
        load_settings(DEFAULT_CONFIG, environ={"MODEL_CAPABILITIES": value}, dotenv=None,
                      overrides={"DATABASE_URL": "postgresql://x/y"})


async def test_the_ai_service_gets_the_image_as_a_scaled_data_url(fake_service, make_client):
    service, client = await start_callback_service(fake_service, make_client, IMAGE_MAX_PIXELS=200)
    account = await register(client)
    chat = await create_chat(client, account)
    photo = await processed(client, account, await uploaded(client, account, image_bytes((800, 400)), "photo.png"))
    posted = await post_message(client, account, chat["id"], "Describe it", file_ids=[photo["id"]])
    await idle(client)
    [request] = [r for r in service.requests if r["message_id"] == posted["assistant_message"]["id"]]
    [url] = request["images"]
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as image:
        assert image.size == (200, 100)
    assert "800x400" in request["files"][0]["content"]
