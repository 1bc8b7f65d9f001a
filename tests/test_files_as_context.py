"""Issue 4's whole path: real uploads of every common kind, their previews,
and a message attaching them answered by the built-in backend citing them."""

from support.accounts import create_chat, register
from support.messages import get_message, post_message
from support.sample_files import docx_bytes, image_bytes, pdf_bytes
from support.served_app import app_of
from support.uploads import processed, uploaded

from chatserver import appkeys


async def test_uploaded_pdf_docx_png_and_text_are_extracted_and_cited_by_the_builtin_answer(client):
    account = await register(client)
    chat = await create_chat(client, account, "Garden")
    uploads = {
        "plan.pdf": pdf_bytes(["Tomatoes need full sun.", "Water the tomatoes every morning."]),
        "notes.docx": docx_bytes(["Basil grows well next to tomatoes."]),
        "photo.png": image_bytes((800, 600)),
        "list.txt": b"Buy tomato stakes and twine.\n",
    }
    files = {}
    for name, data in uploads.items():
        files[name] = await processed(client, account, await uploaded(client, account, data, name, chat_id=chat["id"]))
    assert {name: f["status"] for name, f in files.items()} == dict.fromkeys(uploads, "ready")
    assert "Water the tomatoes every morning." in files["plan.pdf"]["text_content"]
    assert "Basil grows well" in files["notes.docx"]["text_content"]
    assert "800x600" in files["photo.png"]["preview_text"] and files["photo.png"]["has_preview_image"]
    assert files["list.txt"]["text_content"].strip() == "Buy tomato stakes and twine."

    posted = await post_message(client, account, chat["id"], "How should I look after my tomatoes?",
                                file_ids=[f["id"] for f in files.values()])
    await app_of(client)[appkeys.QUEUE].wait_idle(30)
    answer = await get_message(client, account, posted["assistant_message"]["id"])
    assert answer["status"] == "complete"
    assert {s["title"] for s in answer["sources"]} == {"plan.pdf", "notes.docx", "list.txt"}
    assert "\u201cphoto.png\u201d is attached; the built-in search reads text, not images." in answer["content"]
    assert "Water the tomatoes every morning." in answer["content"]
