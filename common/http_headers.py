"""The headers every HTTP answer of ours carries, the cloud's API and the device's preview and health
alike: a browser may not frame the page, sniff a content type or send the address on."""

BROWSER_SAFETY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
