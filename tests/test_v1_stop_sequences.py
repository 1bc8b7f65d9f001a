"""A /v1 call's `stop` sequences, honoured as the answer's pieces arrive
(api/v1.py, Completion.add): the client gets the text up to the first stop
sequence, found also when it spans pieces."""

from __future__ import annotations

from types import SimpleNamespace

from chatserver.api.v1 import Completion


def completion(stops: list[str]) -> Completion:
    body = SimpleNamespace(stops=stops, store=None)
    talk = SimpleNamespace(system_prompt=None, turns=[], question="q")
    return Completion(SimpleNamespace(app=None), {}, body, talk)


def test_a_stop_sequence_inside_a_piece_gives_the_text_before_it_and_nothing_after():
    call = completion(["STOP"])
    assert [call.add(p) for p in ["one ", "two STOP three", "four"]] == ["one ", "two ", ""]
    assert call.text == "one two " and call.stopped


def test_a_stop_sequence_spanning_pieces_ends_the_text_where_it_began():
    call = completion(["xyz", "STOP"])
    # "ST" was given before the rest of the sequence came
    assert [call.add(p) for p in ["one ST", "O", "P two"]] == ["one ST", "O", ""]
    assert call.text == "one "


def test_a_long_answer_of_many_pieces_is_given_whole_up_to_its_stop():
    call = completion(["\n\n"])
    pieces = [f"{n} " for n in range(50_000)]
    given = [call.add(p) for p in [*pieces, "\n", "\nrest"]]
    assert given == [*pieces, "\n", ""]
    assert call.text == "".join(pieces)


def test_without_stop_sequences_every_piece_is_given():
    call = completion([])
    assert [call.add(p) for p in ["a", "", "b"]] == ["a", "", "b"]
    assert call.text == "ab" and not call.stopped
