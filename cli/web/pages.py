"""The two pages the browser sees: the dashboard's terminal, and the form that asks for the token.

The dashboard page is textual-serve's own (`textual_serve/templates/app_index.html`, MIT), cut to
what pmtop needs: no font from the internet (the Roboto Mono that textual-serve ships is served
from here), no inline event handlers (the page's Content-Security-Policy allows only its own
script, by nonce), and a first line of script that drops `?token=` from the address bar.
"""

from __future__ import annotations

from html import escape

CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self'; connect-src 'self' {ws}; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
"""xterm.js adds style elements (hence 'unsafe-inline' for styles only); framing is refused (no
clickjacking of a page whose keys stop processes)."""

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # (no-referrer would make a browser send `Origin: null` on the form)
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_STYLE = """
  @font-face { font-family: "Roboto Mono"; font-style: normal;
               src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
  @font-face { font-family: "Roboto Mono"; font-style: italic;
               src: url("/static/fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
  html, body { margin: 0; height: 100%; }
  body { background: #0c181f; color: rgba(255, 255, 255, 0.95);
         font-family: "Roboto Mono", menlo, monospace; }
"""

DASHBOARD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<script nonce="{nonce}">
  if (new URLSearchParams(location.search).has("token")) {{
    history.replaceState(null, "", location.pathname);  // the token stays in the cookie, not in sight
  }}
  document.addEventListener("DOMContentLoaded", () => {{
    document.getElementById("restart").addEventListener("click", () => {{ location.href = "/"; }});
    // Keys go to the dashboard from its first frame on, without a click first.
    new MutationObserver((_, observer) => {{
      if (!document.body.classList.contains("-first-byte")) return;
      observer.disconnect();
      document.querySelector("#terminal textarea")?.focus();
    }}).observe(document.body, {{attributes: true, attributeFilter: ["class"]}});
  }});
</script>
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/css/xterm.css">
<style>{style}
  .textual-terminal {{ width: 100vw; height: 100vh; opacity: 0; transition: opacity 0.3s ease-out; }}
  body.-first-byte .textual-terminal {{ opacity: 1; }}
  .dialog {{ position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
             z-index: 10; background: #0c181f; }}
  body.-first-byte .starting, .ended {{ display: none; }}
  body.-closed .ended {{ display: flex; }}
  .ended {{ inset: auto 0 0 0; background: transparent; }}  /* the last screen stays in sight */
  .box {{ padding: 16px 32px; background: #12232d; text-align: center; }}
  button {{ padding: 12px 28px; margin-left: 16px; background: #5e0ba7; color: inherit; border: none;
            font: inherit; cursor: pointer; }}
  button:hover {{ background: #ac5af4; }}
</style>
<script src="/static/js/textual.js"></script>
</head>
<body>
<div class="dialog starting"><div class="box">{heading}<br>starting the dashboard…</div></div>
<div class="dialog ended"><div class="box">The dashboard session ended.
  <button type="button" id="restart">Open it again</button></div></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{websocket_url}"
     data-font-size="{font_size}"></div>
</body>
</html>
"""

LOGIN = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{style}
  body {{ display: flex; align-items: center; justify-content: center; }}
  form {{ padding: 32px 48px; background: #12232d; max-width: 36em; }}
  h1 {{ font-size: 1.2em; margin-top: 0; }}
  p.error {{ color: #ff8a80; }}
  input {{ width: 100%; box-sizing: border-box; padding: 8px; font: inherit; margin: 8px 0 16px; }}
  button {{ padding: 10px 24px; background: #5e0ba7; color: inherit; border: none; font: inherit; }}
  code {{ color: #80cbc4; }}
</style>
</head>
<body>
<form method="post" action="/login">
  <h1>{heading}</h1>
  {error}
  <p>This dashboard controls the processes of pmtop instance <code>{instance}</code>. Show its token:
     the link that <code>pmtop web</code> printed has it, and <code>pmtop token</code> prints it.</p>
  <label for="token">Token</label>
  <input type="password" id="token" name="token" autocomplete="current-password" autofocus required>
  <button type="submit">Open the dashboard</button>
</form>
</body>
</html>
"""


def dashboard_page(*, instance: str, websocket_url: str, font_size: int, nonce: str) -> str:
    heading = escape(f"pmtop · {instance}")
    return DASHBOARD.format(title=heading, heading=heading, style=_STYLE, nonce=escape(nonce),
                            websocket_url=escape(websocket_url), font_size=font_size)


def login_page(*, instance: str, wrong: bool) -> str:
    heading = escape(f"pmtop · {instance}")
    error = '<p class="error">That token is wrong.</p>' if wrong else ""
    return LOGIN.format(title=heading, heading=heading, style=_STYLE, error=error, instance=escape(instance))
