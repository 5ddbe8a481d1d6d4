"""Evaluate II exports: the community's axes and ratings handed to the tools researchers use
(Weval, Inspect AI, promptfoo, preference-tuning libraries), the human reference set, a data
statement and one streamed zip of every export of the workshop. Documented field by field in
docs/evaluation.md ("Exports")."""
