"""Setting an organization up: the admin's overview of its people, teams and pipeline
(``admin``), and the demo organization ``make run`` serves (``demo``). The set-up and import
wing grows here: organizations made, people invited, teams, pipelines, settings and quotas
edited, data brought in and given back."""
