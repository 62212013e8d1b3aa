/* Inbox CRM: the one small module of JavaScript.
 *
 * In the task pane it reads the current mail item through one adapter, from Office.js in
 * Outlook or from the preview page that plays a mailbox, and asks the server for the context
 * (htmx swaps the HTML in). In the preview page it plays the mailbox: a click hands the
 * selected item to the pane the way Office.js would.
 * Everything else is server-rendered HTML and htmx attributes.
 */
(function () {
  "use strict";

  var ITEM_MESSAGE = "inboxcrm:item";
  var READY_MESSAGE = "inboxcrm:ready";
  var current = null; // the item the pane shows, with its body

  /* ---- the pane -------------------------------------------------------------------- */

  function addressOf(detail) {
    return detail && (detail.emailAddress || detail.address || "");
  }

  function asyncValue(property) {
    // Read mode gives values; compose mode gives objects with getAsync.
    return new Promise(function (resolve) {
      if (property && typeof property.getAsync === "function") {
        property.getAsync(function (result) { resolve(result.status === "succeeded" ? result.value : null); });
      } else {
        resolve(property);
      }
    });
  }

  function officeItem() {
    var item = Office.context.mailbox.item;
    if (!item) { return Promise.resolve(null); }
    var isAppointment = item.itemType === Office.MailboxEnums.ItemType.Appointment;
    var reads = [
      asyncValue(item.from || item.organizer),
      asyncValue(isAppointment ? item.requiredAttendees : item.to),
      asyncValue(isAppointment ? item.optionalAttendees : item.cc),
      asyncValue(item.subject),
      new Promise(function (resolve) {
        item.body.getAsync(Office.CoercionType.Text, function (result) {
          resolve(result.status === "succeeded" ? result.value : "");
        });
      })
    ];
    return Promise.all(reads).then(function (values) {
      var composing = typeof (item.subject && item.subject.getAsync) === "function";
      var from = values[0] || (composing ? Office.context.mailbox.userProfile : null);
      var people = function (list) { return (list || []).map(addressOf).filter(Boolean); };
      return {
        item_type: composing ? "compose" : (isAppointment ? "appointment" : "message"),
        from_address: from ? (from.emailAddress || "") : "",
        from_name: from ? (from.displayName || "") : "",
        to: isAppointment ? [] : people(values[1]),
        cc: isAppointment ? [] : people(values[2]),
        attendees: isAppointment ? people(values[1]).concat(people(values[2])) : [],
        subject: values[3] || "",
        internet_message_id: item.internetMessageId || "",
        conversation_id: item.conversationId || "",
        sent_at: item.dateTimeCreated ? new Date(item.dateTimeCreated).toISOString() : "",
        start: item.start && item.start.toISOString ? item.start.toISOString() : "",
        end: item.end && item.end.toISOString ? item.end.toISOString() : "",
        body_text: values[4] || ""
      };
    });
  }

  function showItem(item) {
    current = item;
    var pane = document.getElementById("context");
    if (!pane || !item) { return; }
    var query = new URLSearchParams();
    ["item_type", "from_address", "from_name", "subject", "internet_message_id", "sent_at"].forEach(function (key) {
      if (item[key]) { query.append(key, item[key]); }
    });
    ["to", "cc", "attendees"].forEach(function (key) {
      (item[key] || []).forEach(function (address) { query.append(key, address); });
    });
    pane.setAttribute("data-message-id", item.internet_message_id || "");
    htmx.ajax("GET", pane.getAttribute("data-context-url") + "?" + query.toString(), { target: "#context", swap: "innerHTML" });
  }

  function startPane(pane) {
    // Logging an email sends the body the adapter read; it is too large for the page.
    document.body.addEventListener("htmx:configRequest", function (event) {
      var form = event.detail.elt;
      if (current && form && form.querySelector("[data-needs-body]")) {
        event.detail.parameters.body_text = current.body_text || "";
      }
    });

    if (pane.getAttribute("data-host") === "preview") {
      window.addEventListener("message", function (event) {
        if (event.origin !== window.location.origin || !event.data || event.data.type !== ITEM_MESSAGE) { return; }
        showItem(event.data.item);
      });
      if (window.parent !== window) {
        window.parent.postMessage({ type: READY_MESSAGE }, window.location.origin);
      }
      return;
    }
    if (typeof Office === "undefined") {
      if (pane.querySelector(".context")) { return; } // a page the server already filled
      pane.innerHTML = "";
      var note = document.createElement("p");
      note.className = "empty";
      note.textContent = "Office.js did not load: open this pane from Outlook, or try the preview.";
      pane.appendChild(note);
      return;
    }
    Office.onReady(function () {
      var mailbox = Office.context.mailbox;
      if (!mailbox) { return; }
      officeItem().then(showItem);
      // A pinned pane stays open while the rep moves from mail to mail.
      mailbox.addHandlerAsync(Office.EventType.ItemChanged, function () { officeItem().then(showItem); });
    });
  }

  /* ---- the preview mailbox --------------------------------------------------------- */

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
