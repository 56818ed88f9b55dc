"""Payment codes: consumer-presented codes (付款码, online and offline) and merchant-presented
EMVCo codes (static store codes, dynamic order codes), with their QR images."""
