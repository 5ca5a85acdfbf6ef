"""The pedagogical move judge: a classifier of tutor replies trained on human labels
(MathDial's focus / probing / telling / generic), with derived judgements for the evals."""
