/* Inbox CRM: the one small module of JavaScript.
 *
 * In the task pane, one adapter reads the current mail item, from Office.js in Outlook or from
 * the preview page that plays a mailbox, and the server renders the context for it (htmx swaps
 * the HTML in). In the preview page, this module plays the mailbox: a click hands the selected
 * item to the pane the way Office.js would. Everything else is server-rendered HTML and htmx.
 */
(function () {
  "use strict";

  var ITEM_MESSAGE = "inboxcrm:item";
  var READY_MESSAGE = "inboxcrm:ready";
  var LOG_ON_SEND = "inboxcrm_log";
  var SEND_KEY = "inboxcrm_send_key"; // set by launchevent.js on a message it logged as it was sent

  /* ---- adapters: each reads the item and reports when it changes --------------------- */

  function officeValue(property) {
    // Read mode gives values; compose mode gives objects read with getAsync.
    return new Promise(function (resolve) {
      if (property && typeof property.getAsync === "function") {
        property.getAsync(function (result) { resolve(result.status === "succeeded" ? result.value : null); });
      } else {
        resolve(property === undefined ? null : property);
      }
    });
  }

  function iso(value) {
    return value ? new Date(value).toISOString() : "";
  }

  var OfficeAdapter = {
    readItem: function () {
      var mailbox = Office.context.mailbox;
      var item = mailbox.item;
      if (!item) { return Promise.resolve(null); }
      var appointment = item.itemType === Office.MailboxEnums.ItemType.Appointment;
      var composing = typeof (item.subject && item.subject.getAsync) === "function";
      return Promise.all([
        officeValue(appointment ? item.organizer : item.from),
        officeValue(appointment ? item.requiredAttendees : item.to),
        officeValue(appointment ? item.optionalAttendees : item.cc),
        officeValue(item.subject),
        officeValue(item.start),
        officeValue(item.end),
        new Promise(function (resolve) {
          item.body.getAsync(Office.CoercionType.Text, function (result) {
            resolve(result.status === "succeeded" ? result.value : "");
          });
        }),
        appointment || composing ? null : OfficeAdapter.withProperties(function (properties) { return properties.get(SEND_KEY) || ""; })
      ]).then(function (v) {
        var from = v[0] || (composing ? mailbox.userProfile : null);
        var people = function (list) {
          return (list || []).map(function (p) { return p.emailAddress; }).filter(Boolean);
        };
        return {
          item_type: appointment ? "appointment" : (composing ? "compose" : "message"),
          from_address: from ? from.emailAddress || "" : "",
          from_name: from ? from.displayName || "" : "",
          to: appointment ? [] : people(v[1]),
          cc: appointment ? [] : people(v[2]),
          attendees: appointment ? people(v[1]).concat(people(v[2])) : [],
          subject: v[3] || "",
          internet_message_id: item.internetMessageId || "",
          conversation_id: item.conversationId || "",
          event_id: appointment ? (item.itemId || "") : "",
          sent_at: iso(item.dateTimeCreated),
          start: iso(v[4]),
          end: iso(v[5]),
          body_text: v[6] || "",
          send_key: v[7] || ""
        };
      });
    },
    // The mailbox's zone in Windows form ("Central European Standard Time"); Outlook on the web
    // gives its calendar's zone.
    timeZone: function () {
      var profile = Office.context.mailbox && Office.context.mailbox.userProfile;
      return (profile && profile.timeZone) || "";
    },
    onItemChanged: function (callback) {
      // A pinned pane stays open while the rep moves from mail to mail.
      Office.context.mailbox.addHandlerAsync(Office.EventType.ItemChanged, callback);
    },
    // Custom properties travel with the message into Sent Items.
    withProperties: function (use) {
      return new Promise(function (resolve) {
        var item = Office.context.mailbox.item;
        if (!item || typeof item.loadCustomPropertiesAsync !== "function") { resolve(null); return; }
        item.loadCustomPropertiesAsync(function (result) {
          resolve(result.status === "succeeded" ? use(result.value) : null);
        });
      });
    },
    markForLogging: function () {
      return OfficeAdapter.withProperties(function (properties) {
        properties.set(LOG_ON_SEND, "1");
        return new Promise(function (resolve) {
          properties.saveAsync(function (result) { resolve(result.status === "succeeded"); });
        });
      });
    },
    isMarkedForLogging: function () {
      return OfficeAdapter.withProperties(function (properties) { return properties.get(LOG_ON_SEND) === "1"; });
    }
  };

  function PreviewAdapter() {
    var current = null;
    var listeners = [];
    window.addEventListener("message", function (event) {
      if (event.origin !== window.location.origin || !event.data || event.data.type !== ITEM_MESSAGE) { return; }
      current = event.data.item;
      listeners.forEach(function (listener) { listener(); });
    });
    return {
      readItem: function () { return Promise.resolve(current); },
      // The preview's mailbox is the browser's own: its zone is the machine's.
      timeZone: function () {
        try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
      },
      onItemChanged: function (callback) { listeners.push(callback); },
      markForLogging: function () { return Promise.resolve(false); },
      isMarkedForLogging: function () { return Promise.resolve(false); }
    };
  }

  /* ---- signing in where cookies are blocked --------------------------------------------- */

  var TOKEN_KEY = "inboxcrm.pane-token";
  var memoryToken = null;
  var Tokens = {
    get: function () {
      try { return window.sessionStorage.getItem(TOKEN_KEY) || memoryToken; } catch (e) { return memoryToken; }
    },
    set: function (token) {
      memoryToken = token;
      try { window.sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* storage blocked: memory only */ }
    },
    clear: function () {
      memoryToken = null;
      try { window.sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
    }
  };

  function postJson(url, body, token) {
    var headers = { "Content-Type": "application/json" };
    if (token) { headers.Authorization = "Bearer " + token; }
    return fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok) { throw new Error(answer.error || "Sign-in failed."); }
          return answer;
        });
      });
  }

  function Session(pane) {
    var refreshTimer = null;

    function keep(answer) {
      Tokens.set(answer.token);
      clearTimeout(refreshTimer);
      // Refresh a while before the token runs out; a failed refresh signs in again later.
      refreshTimer = setTimeout(function () {
        postJson(pane.getAttribute("data-refresh-url"), {}, Tokens.get()).then(keep, Tokens.clear);
      }, Math.max(60, answer.expires_in - 300) * 1000);
    }

    function officeSingleSignOn() {
      if (typeof Office === "undefined" || !Office.auth || !Office.auth.getAccessToken) {
        return Promise.reject(new Error("no single sign-on here"));
      }
      return Promise.resolve(Office.auth.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true }))
        .then(function (accessToken) { return postJson(pane.getAttribute("data-office-token-url"), { token: accessToken }); })
        .then(keep);
    }

    function passwordForm() {
      var section = document.getElementById("pane-sign-in");
      if (!section) { return Promise.reject(new Error("no sign-in form")); }
      var form = section.querySelector("form");
      var error = section.querySelector("[data-sign-in-error]");
      // Shown again (after a sign-out, an expiry): empty, with no old error, and no listener
      // of the last time left to post twice.
      form.reset();
      error.hidden = true;
      section.hidden = false;
      var done = new AbortController();
      return new Promise(function (resolve) {
        function signedIn(answer) {
          keep(answer);
          section.hidden = true;
          form.reset();
          done.abort();
          resolve();
        }
        // "Sign in with Microsoft / Google" opens in an Office dialog, which hands back a token.
        section.addEventListener("click", function (event) {
          var link = event.target.closest("[data-dialog-url]");
          if (!link || typeof Office === "undefined" || !Office.context.ui) { return; }
          event.preventDefault();
          Office.context.ui.displayDialogAsync(link.getAttribute("data-dialog-url"), { height: 60, width: 30 }, function (opened) {
            if (opened.status !== "succeeded") { return; }
            var dialog = opened.value;
            dialog.addEventHandler(Office.EventType.DialogMessageReceived, function (arrived) {
              dialog.close();
              signedIn(JSON.parse(arrived.message));
            });
          });
        }, { signal: done.signal });
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          var body = { email: form.elements.email.value, password: form.elements.password.value };
          postJson(form.getAttribute("data-token-url"), body).then(signedIn, function (failure) {
            error.textContent = failure.message;
            error.hidden = false;
          });
        }, { signal: done.signal });
      });
    }

    // The shell loaded signed out; once a token signs it in, its header says who, with the
    // same links and sign-out a cookie session's pane has.
    function showHeader() {
      var header = document.getElementById("pane-header");
      if (!header) { return Promise.resolve(); }
      return htmx.ajax("GET", header.getAttribute("data-header-url"), { target: "#pane-header", swap: "outerHTML" });
    }

    return {
      ensure: function () {
        if (pane.getAttribute("data-signed-in") === "true") { return Promise.resolve(); }
        if (Tokens.get()) { return showHeader(); }
        return officeSingleSignOn().catch(passwordForm).then(showHeader);
      },
      expired: function () {
        Tokens.clear();
        pane.setAttribute("data-signed-in", "false");
      },
      // After signing out on purpose, no silent single sign-on: the rep chooses to come back.
      signInAgain: function () {
        return passwordForm().then(showHeader);
      }
    };
  }

  /* ---- the pane ------------------------------------------------------------------------ */

  var shown = null; // the item on screen, with its body

  // Never the wrong mail: the last item's context goes the moment another is opened, and a slow
  // answer for the mail before is never swapped in over this one's. Each item's request has a
  // source of its own, numbered (``itemSource``): a request still under way for an earlier
  // number is let finish and dropped at its swap (aborting it made htmx log an error for each).
  var itemNumber = 0;
  function clearPane(pane) {
    itemNumber += 1;
    pane.setAttribute("aria-busy", "true");
    pane.innerHTML = '<p class="empty">Loading…</p>';
  }

  function itemSource(pane) {
    var source = document.createElement("span");
    source.hidden = true;
    source.setAttribute("data-item-number", String(itemNumber));
    pane.parentNode.appendChild(source);
    return source;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var number = event.detail.elt && event.detail.elt.getAttribute("data-item-number");
    if (number !== null && number !== undefined && number !== String(itemNumber)) { event.detail.shouldSwap = false; }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var source = event.detail.elt;
    if (source && source.hasAttribute && source.hasAttribute("data-item-number")) { source.remove(); }
  });

  function showItem(adapter, item) {
    var pane = document.getElementById("context");
    shown = item;
    if (!item) {
      // No mail open: the rep's day (follow-ups overdue and due today).
      clearPane(pane);
      htmx.ajax("GET", pane.getAttribute("data-my-day-url"), { source: itemSource(pane), target: "#context", swap: "innerHTML" })
        .finally(function () { if (shown === item) { pane.removeAttribute("aria-busy"); } });
      return;
    }
    // The item's fields as the server names them (``addin/routes/pane.py``: ITEM_FIELDS, ITEM_LISTS),
    // posted: addresses and subjects stay out of URLs, and so out of any log of them.
    var values = {};
    pane.getAttribute("data-item-fields").split(" ").forEach(function (key) { if (item[key]) { values[key] = item[key]; } });
    pane.getAttribute("data-item-lists").split(" ").forEach(function (key) {
      if ((item[key] || []).length) { values[key] = item[key]; }
    });
    clearPane(pane);
    htmx.ajax("POST", pane.getAttribute("data-context-url"), { source: itemSource(pane), target: "#context", swap: "innerHTML", values: values })
      .finally(function () { if (shown === item) { pane.removeAttribute("aria-busy"); } })
      .then(function () { return shown === item && item.item_type === "message" ? adapter.isMarkedForLogging() : false; })
      .then(function (marked) {
        // A message marked in compose is logged when it is opened from Sent Items.
        // Submitted through htmx (processed first: the swap may not have settled), so that the
        // form carries the open item (``#open-item``) and the body.
        var form = marked && pane.querySelector("[data-form=log_email]");
        if (form) { htmx.process(form); form.requestSubmit(); }
      });
  }

  function startPane(pane) {
    var preview = pane.getAttribute("data-host") === "preview";
    if (!preview && typeof Office === "undefined") {
      if (pane.querySelector(".context")) { return; } // a page the server already filled
      pane.innerHTML = '<p class="empty">Office.js did not load: open this pane from Outlook, or try the preview.</p>';
      return;
    }
    var adapter = preview ? PreviewAdapter() : OfficeAdapter;
    var session = Session(pane);
    // Each item change counts: an item read after a later change began is not shown.
    var changes = 0;
    var refresh = function () {
      var change = ++changes;
      clearPane(pane);
      adapter.readItem().then(function (item) { if (change === changes) { showItem(adapter, item); } });
    };

    document.body.addEventListener("htmx:configRequest", function (event) {
      var token = Tokens.get();
      if (token) { event.detail.headers.Authorization = "Bearer " + token; }
      // Times are typed and read in the mailbox's zone, which the server cannot know itself.
      var zone = adapter.timeZone();
      if (zone) { event.detail.headers["X-Time-Zone"] = zone; }
      // Logging an email sends the body the adapter read: it is too large to ride in the page.
      var form = event.detail.elt;
      if (shown && form && form.matches && form.matches("[data-form=log_email], [data-form=log_meeting]")) {
        event.detail.parameters.body_text = shown.body_text || "";
      }
    });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      // A small action answers with only what changed (out of band): its form starts afresh,
      // and the toast is where the rep's eyes and keyboard go.
      var elt = event.detail.elt;
      if (event.detail.successful && elt && elt.matches && elt.matches("form[data-reset-on-success]")) {
        // Emptied, not only reset: a form drawn again after a refusal holds what was typed as its defaults.
        elt.reset();
        elt.querySelectorAll("input:not([type=hidden]):not([type=checkbox]):not([type=radio]), textarea").forEach(function (field) { field.value = ""; });
        elt.querySelectorAll("input[type=checkbox]").forEach(function (box) { box.checked = false; });
        var details = elt.closest("details");
        if (details && elt.isConnected) { details.open = false; }
        var toast = pane.querySelector("#notices .toast");
        if (toast) { toast.setAttribute("tabindex", "-1"); toast.focus({ preventScroll: true }); }
      }
      if (event.detail.xhr && event.detail.xhr.status === 401) {
        session.expired();
        session.ensure().then(refresh);
      }
    });
    // Signed out (the header's button): the token is dead on the server; forget it here too.
    document.body.addEventListener("inboxcrm:signed-out", function () {
      session.expired();
      var who = document.getElementById("pane-header");
      if (who) { who.querySelectorAll("nav, #who").forEach(function (part) { part.remove(); }); }
      if (!preview) { session.signInAgain().then(refresh); }
    });
    // Signed in by token (no cookie, as in Outlook): a link to one of our pages would ask the
    // browser window for a second sign-in. It opens a single-use link instead, made for it now.
    document.body.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[data-handoff]");
      var token = Tokens.get();
      if (!link || !token) { return; }
      event.preventDefault();
      var office = typeof Office !== "undefined" && Office.context && Office.context.ui && Office.context.ui.openBrowserWindow;
      var opened = office ? null : window.open("", "_blank"); // opened now, while the click counts
      var body = new URLSearchParams({ next: link.getAttribute("href") });
      fetch(pane.getAttribute("data-handoff-url"), {
        method: "POST", body: body, credentials: "omit", headers: { Authorization: "Bearer " + token }
      }).then(function (response) { return response.json(); }).then(function (answer) {
        if (!answer.url) { throw new Error(answer.error || "no link"); }
        if (office) { Office.context.ui.openBrowserWindow(answer.url); } else if (opened) { opened.location = answer.url; }
      }).catch(function () { if (opened) { opened.close(); } });
    });
    // The team panel replaces the email's context; this brings the email back.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      pane.querySelectorAll("[data-back-to-item]").forEach(function (back) { back.hidden = !shown; });
      // After an action, the result is where the rep's eyes and keyboard are: a refused
      // form's first marked field (or its line), else the toast, which the CSS keeps in view;
      // both are live regions, so a screen reader hears them too. Not after a background
      // post ([data-background]: the checklist hint as the rep types), which would pull the
      // keyboard out of the field being typed in, back to the field marked before.
      var config = event.detail.requestConfig;
      if (!config || config.verb !== "post" || (config.elt && config.elt.closest("[data-background]"))) { return; }
      var result = pane.querySelector("[aria-invalid=true]") || pane.querySelector(".form-error") || pane.querySelector(".alert") ||
        pane.querySelector(".toast");
      if (!result) { return; }
      if (!result.matches("input, select, textarea, button")) { result.setAttribute("tabindex", "-1"); }
      result.focus({ preventScroll: result.classList.contains("toast") });
      if (!result.classList.contains("toast")) { result.scrollIntoView({ block: "center" }); }
    });
    pane.addEventListener("click", function (event) {
      if (event.target.closest("[data-back-to-item]")) { showItem(adapter, shown); return; }
      var button = event.target.closest("[data-log-on-send]");
      if (!button) { return; }
      button.disabled = true;
      adapter.markForLogging().then(function (saved) {
        var state = pane.querySelector("[data-log-on-send-state]");
        button.hidden = !!saved;
        button.disabled = false;
        if (state) {
          state.hidden = false;
          state.textContent = saved ? "✓ Will be logged when sent." : "Could not mark this message: log it from Sent Items.";
        }
      });
    });

    if (preview) {
      adapter.onItemChanged(refresh);
      if (window.parent !== window) { window.parent.postMessage({ type: READY_MESSAGE }, window.location.origin); }
      return;
    }
    Office.onReady(function () {
      if (!Office.context.mailbox) { return; }
      session.ensure().then(function () {
        refresh();
        adapter.onItemChanged(refresh);
      });
    });
  }

  /* ---- the preview mailbox ------------------------------------------------------------- */

  function startMailbox(mailbox) {
    var frame = document.getElementById("taskpane");
    var selected = null;

    function send() {
      if (selected && frame && frame.contentWindow) {
        frame.contentWindow.postMessage({ type: ITEM_MESSAGE, item: selected }, window.location.origin);
      }
    }

    function select(button) {
      selected = JSON.parse(button.getAttribute("data-item"));
      mailbox.querySelectorAll("button.mail").forEach(function (other) { other.removeAttribute("aria-current"); });
      button.setAttribute("aria-current", "true");
      document.getElementById("reading-subject").textContent = selected.subject;
      document.getElementById("reading-meta").textContent = selected.from_name + " <" + selected.from_address + ">" +
        (selected.to.length ? " to " + selected.to.join(", ") : "");
      document.getElementById("reading-body").textContent = selected.body_text;
      send();
      document.dispatchEvent(new CustomEvent("inboxcrm:item", { detail: selected }));
    }

    mailbox.addEventListener("click", function (event) {
      var button = event.target.closest("button.mail");
      if (button) { select(button); }
    });
    window.addEventListener("message", function (event) {
      if (event.origin === window.location.origin && event.data && event.data.type === READY_MESSAGE) { send(); }
    });
    var first = mailbox.querySelector("button.mail");
    if (first) { select(first); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var pane = document.getElementById("context");
    var mailbox = document.getElementById("mailbox");
    if (pane) { startPane(pane); }
    if (mailbox) { startMailbox(mailbox); }
  });
})();
