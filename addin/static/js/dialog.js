/* The sign-in dialog's last page: hand the pane token to the pane that opened the dialog. */
(function () {
  "use strict";
  Office.onReady(function () {
    Office.context.ui.messageParent(document.body.getAttribute("data-answer"));
  });
})();
