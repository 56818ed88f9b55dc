"""Payment-provider notification adapters (支付渠道异步通知).

Pure functions that authenticate and parse what WeChat Pay (微信支付 API v3) and Alipay
(支付宝) POST to us when a payment changes state. No database and no HTTP routes here: the
caller hands over the raw request (headers, exact body bytes or decoded form) and gets back a
typed notification or a `ChannelError`, plus the reply the provider expects.

- `wechatpay`: verify the RSA-SHA256 signature headers, decrypt the AES-256-GCM resource.
- `alipay`: verify the RSA2 signature over the sorted form, parse yuan amounts to fen.
- `keys`: load the providers' RSA public keys (PEM, X.509 certificate, or bare base64).
- `errors`: `ChannelError` codes and the HTTP status each becomes.

And the other direction, starting a payment the app completes (no database here either):

- `wechatpay_orders`: place the API v3 APP order (the one outgoing HTTP call, signed with our
  merchant key; the answer's signature verified) and sign the app's PayReq parameters.
- `alipay_orders`: sign the alipay.trade.app.pay order string with our application key.
- `signing`: load our RSA private keys and sign with them.
"""
