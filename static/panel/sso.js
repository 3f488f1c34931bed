// Submit the SSO hand-off form at once: the token travels in a POST body, never in a URL.
document.getElementById("sso").submit();
