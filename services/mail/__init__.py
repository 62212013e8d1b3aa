"""What a mail brings into the CRM: who is on it and what is open with them (``context``), the
people and companies it names (``contacts``), logging it and every other activity (``activities``,
the one write path of an activity), and reading its addresses, names and text (``text``)."""
