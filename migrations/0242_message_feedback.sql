-- Feedback on answers: the owner's thumbs up or down (rating 1 or -1) with an optional comment,
-- kept with the message; counted per model for administrators.
-- depends: 0241_folders_pins_archive

ALTER TABLE messages ADD COLUMN feedback jsonb
    CHECK (feedback IS NULL OR (jsonb_typeof(feedback) = 'object' AND feedback->>'rating' IN ('1', '-1')));
-- counting thumbs by model reads only the messages that have feedback
CREATE INDEX messages_feedback_model ON messages (model) WHERE feedback IS NOT NULL;
