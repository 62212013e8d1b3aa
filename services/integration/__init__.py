"""The CRM as other systems see it: numbered changes read past a cursor (``sync``, ``cursor``),
changes told to subscribers (``webhooks``, through ``outbound``, which reaches public addresses
only), leads taken from forms (``intake``), the API's generic writes (``records``) and its
tokens (``api_tokens``). The organization's change number itself is on the ground floor
(``services.change_numbers``): the access rules take it too."""
