// Asks before a form marked data-confirm is sent (disabling an account, say).
// Kept in a file, not inline, so the Content-Security-Policy can forbid inline script.
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
