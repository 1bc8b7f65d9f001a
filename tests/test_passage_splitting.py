"""How extracted text is cut into passages: size, overlap, pages, headings."""

import itertools

from chatserver.knowledge.splitting import OVERLAP_CHARS, PASSAGE_CHARS, split


def long_section(count: int) -> str:
    return " ".join(f"Sentence number {n} says something." for n in range(count))


def test_a_short_text_is_one_passage_without_page_or_heading():
    assert [(p.ordinal, p.page, p.heading, p.text) for p in split("Tomatoes need sun.\nWater them.")] == [
        (0, None, None, "Tomatoes need sun. Water them.")]


def test_long_text_is_cut_into_passages_within_the_size_that_share_their_last_sentences():
    found = split(long_section(300))
    assert len(found) > 5
    assert all(len(p.text) <= PASSAGE_CHARS for p in found)
    for before, after in itertools.pairwise(found):
        shared = after.text[: OVERLAP_CHARS]
        assert shared.split(". ")[0] in before.text
    # every sentence is in some passage
    assert all(f"Sentence number {n} says" in " ".join(p.text for p in found) for n in range(300))


def test_pdf_pages_separated_by_form_feeds_number_the_passages():
    found = split("Page one words.\fPage two words.\fPage three words.")
    assert [(p.page, p.text) for p in found] == [(1, "Page one words."), (2, "Page two words."),
                                                 (3, "Page three words.")]


def test_markdown_headings_name_the_section_of_each_passage_across_pages():
    found = split("# Planting\nDig a hole.\n\n## Watering\nWater daily.\fStill about water.")
    assert [(p.page, p.heading, p.text) for p in found] == [
        (1, "Planting", "Dig a hole."), (1, "Watering", "Water daily."), (2, "Watering", "Still about water.")]


def test_a_sentence_longer_than_a_passage_is_cut_at_spaces():
    found = split("word " * 1000)
    assert len(found) > 1 and all(len(p.text) <= PASSAGE_CHARS for p in found)


def test_the_extractors_cut_note_is_not_a_passage():
    assert [p.text for p in split("Real text.\n\n[cut: only the first 10 characters of the text are kept]")] == [
        "Real text."]
