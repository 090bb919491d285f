"""Fresh hand-written PII corpus (written 2026-12-07, blind to the recognizer code): support messages for an online store.

Written from the scope declared in the module docstring of `chatforge/data/pii.py` and the
corpus format described in `benchmarks/pii_heldout.py`, without reading the recognizers, their
templates or tests, the older held-out corpus, or running the anonymizer on these messages.

Each item is `(message_text, [(TYPE, value), ...])`. Every whole-word occurrence of a labelled
value is a truth span (a value that is repeated is labelled once). Every in-scope identifier in a
message is labelled; everything else (prices, dates, times, SKUs, versions, tracking numbers,
ZIP codes alone, role mailboxes, card numbers failing Luhn, IMEI / serial / barcode numbers,
greetings without a name, company sign-offs ...) is a look-alike that must stay untouched.

Conventions used while writing:
- Names are only labelled in messages where at least one copy follows a declared trigger
  ("my name is", "Name:", "I'm", "this is", "X here", greetings, sign-offs, "- X" at the end);
  messages whose names have no trigger live in OUT_OF_SCOPE_FRESH.
- E-mail local parts never repeat a labelled name token as a whole word, and no identifier is
  nested inside another (URL query values are opaque tokens), so spans never compete.
- Card numbers pass Luhn with real issuer prefixes, IBANs pass ISO 7064 mod-97 with their
  country's length, SSNs avoid the never-issued ranges; US phones use 555-01xx, UK phones the
  Ofcom drama ranges (07700 900xxx, 020 7946 0xxx, 0113/0161/0141 496 0xxx), French numbers
  the reserved 01 99 00 / 06 39 98 blocks; IPs come from the documentation ranges or private ones.
- Orders follow the store format LG- + 6 digits (any case, optional "#" as part of the value).

OUT_OF_SCOPE_FRESH holds messages slightly beyond the declared scope (names without a trigger,
obfuscated e-mails, US phones with spaces only, French national phones, German and French street
addresses, lower-case "i'm x", order numbers with a space ...), labelled as a careful human
would; they are scored apart.
"""

Item = tuple[str, list[tuple[str, str]]]

CORPUS_FRESH: list[Item] = [
    # ------------------------------------------------------------------------------------------
    # Orders, names, e-mails: everyday chat and e-mail
    # ------------------------------------------------------------------------------------------
    ("hi, where is my order LG-730215?? its been 9 days", [("ORDER", "LG-730215")]),
    (
        "Hi there, my name is Priya Raman and I ordered a walnut desk (SKU FN-2210) on 03/14/2025, order #LG-118406. "
        "Can you tell me when it ships? You can reach me at praman84@example.com.\nThanks,\nPriya",
        [("NAME", "Priya Raman"), ("NAME", "Priya"), ("ORDER", "#LG-118406"), ("EMAIL", "praman84@example.com")],
    ),
    (
        "order lg-552907 arrived damaged, box crushed. pics attached. call me 07700 900461 after 5pm",
        [("ORDER", "lg-552907"), ("PHONE", "07700 900461")],
    ),
    (
        "Tomasz here again - still waiting on the refund for LG-903317. It's been 14 working days and €89,90 is not nothing.",
        [("NAME", "Tomasz"), ("ORDER", "LG-903317")],
    ),
    (
        "Dear Larkspur Goods team,\n\nI would like to return the Aria floor lamp from order LG-264810 (delivered 12.05.2025). "
        "Please send the return label to m.lefevre@example.fr.\n\nKind regards,\nMargaux Lefèvre",
        [("ORDER", "LG-264810"), ("EMAIL", "m.lefevre@example.fr"), ("NAME", "Margaux Lefèvre")],
    ),
    (
        "can u update the phone number on my account to +1 415-555-0132, the old one was (646) 555-0178",
        [("PHONE", "+1 415-555-0132"), ("PHONE", "(646) 555-0178")],
    ),
    (
        "Hi Aoife, thanks for your patience. Your replacement for order LG-440921 left our warehouse today, "
        "tracking 1Z4F83W20391837265 (UPS).\n\nBest,\nDaniel from Larkspur Goods",
        [("NAME", "Aoife"), ("ORDER", "LG-440921"), ("NAME", "Daniel")],
    ),
    (
        "My card 4212 2544 1019 9524 was charged twice for LG-617382, once for $249.00 and then $249.00 again. Please refund one.",
        [("CARD", "4212 2544 1019 9524"), ("ORDER", "LG-617382")],
    ),
    ("pls cancel LG-385019 before it ships!!! wrong size (ordered 42, need 44)", [("ORDER", "LG-385019")]),
    (
        "Hi, this is Kwame Mensah. I moved, so the new delivery address is 1428 Elmwood Avenue, Apt 3B, Portland, OR 97205. "
        "The old one was 77 Birchwood Dr, Austin, TX 78704.",
        [
            ("NAME", "Kwame Mensah"),
            ("ADDRESS", "1428 Elmwood Avenue, Apt 3B, Portland, OR 97205"),
            ("ADDRESS", "77 Birchwood Dr, Austin, TX 78704"),
        ],
    ),
    ("Is the Harbor oak bench (SKU HM-3318) back in stock? Saw it for $349.99 last week.", []),
    ("Hi team, the discount code SPRING25 didn't apply at checkout. Cart total was £112.40 before VAT.", []),
    (
        "For the refund please use my IBAN DE95 4837 8366 8212 6424 52 (account holder Felix Baumann).\n\nThanks, Felix Baumann",
        [("IBAN", "DE95 4837 8366 8212 6424 52"), ("NAME", "Felix Baumann")],
    ),
    (
        "hey its dev patel, my name is dev patel lol the chatbot keeps asking. order LG-229471, email devp.shop@example.net",
        [("NAME", "dev patel"), ("ORDER", "LG-229471"), ("EMAIL", "devp.shop@example.net")],
    ),
    ("Why was I charged €49,95 instead of €39,95? Order placed 10.06.2025 around 21:40.", []),
    ("Ordered on 2025-04-02, delivered 2025-04-09, item broken. What now?", []),
    (
        "Can you send the invoice to accounts@example.com? It's for our office order LG-508833.",
        [("ORDER", "LG-508833")],
    ),
    (
        "I already emailed support@larkspurgoods.com three times about LG-671205 and nobody answered.",
        [("ORDER", "LG-671205")],
    ),
    (
        "Name: Hannah Kowalski\nEmail: hkowalski@example.org\nPhone: 0113 496 0562\nOrder: LG-092746\n"
        "Message: The lamp shade arrived with a dent.",
        [
            ("NAME", "Hannah Kowalski"),
            ("EMAIL", "hkowalski@example.org"),
            ("PHONE", "0113 496 0562"),
            ("ORDER", "LG-092746"),
        ],
    ),
    (
        "NAME: OLUMIDE ADEYEMI\nORDER NO: LG-345612\nISSUE: wrong colour sent (got grey, ordered sage)",
        [("NAME", "OLUMIDE ADEYEMI"), ("ORDER", "LG-345612")],
    ),
    (
        "Hello, I'm Chiara Esposito. I paid by bank transfer from IT87 X672 4203 3445 8907 4643 531 but order LG-778140 still says unpaid.",
        [("NAME", "Chiara Esposito"), ("IBAN", "IT87 X672 4203 3445 8907 4643 531"), ("ORDER", "LG-778140")],
    ),
    (
        "Login attempts from 203.0.113.77 that were NOT me!! I'm in Ohio, that IP is somewhere else. Account email is ecaldwell@example.com",
        [("IP", "203.0.113.77"), ("EMAIL", "ecaldwell@example.com")],
    ),
    (
        "Password reset link doesn't work: https://www.larkspurgoods.com/account/reset?token=9c4e1a77f02b4d1e8a3f&uid=558201 "
        "- it says expired. Can you send another?",
        [("URL", "https://www.larkspurgoods.com/account/reset?token=9c4e1a77f02b4d1e8a3f&uid=558201")],
    ),
    ("Firmware 4.12.3.1 on the smart plug keeps disconnecting. App version 2.8.0. Router is a FritzBox 7590.", []),
    (
        "Hi Marcus,\n\nWe've issued a refund of $58.20 to the Mastercard ending in 4512. It should appear within 5-10 business days.\n\n"
        "Regards,\nSofia\nLarkspur Goods Customer Care",
        [("NAME", "Marcus"), ("NAME", "Sofia")],
    ),
    (
        "ssn 478-23-9104 - your financing partner asked for it on the form, is that right?? seems sketchy",
        [("SSN", "478-23-9104")],
    ),
    (
        "I'd like to pay the remaining balance with my Amex 3709 832599 11336, exp 08/27",
        [("CARD", "3709 832599 11336")],
    ),
    ("got it, all sorted now. thanks!!\n- Jonas", [("NAME", "Jonas")]),
    (
        "Dear Sir or Madam,\n\nPlease find attached the signed return form for order LG-660297.\n\nYours faithfully,\n\nR. Castellanos",
        [("ORDER", "LG-660297"), ("NAME", "R. Castellanos")],
    ),
    ("I'm Sorry to bother you again but the parcel still hasn't arrived. DHL says JD014600003847261953.", []),
    (
        "what's the status of #LG-481200? and #LG-481207 (2 separate orders, same day)",
        [("ORDER", "#LG-481200"), ("ORDER", "#LG-481207")],
    ),
    (
        "Hey Nadia! Sure, I can move the delivery slot to Tuesday 14:00-16:00.\nCheers, Ben",
        [("NAME", "Nadia"), ("NAME", "Ben")],
    ),
    (
        "Please refund to GB86 BARC 4648 3431 2658 90, reference LG-305577.\n\nRegards,\nCallum McGregor",
        [("IBAN", "GB86 BARC 4648 3431 2658 90"), ("ORDER", "LG-305577"), ("NAME", "Callum McGregor")],
    ),
    (
        "my ip is 2001:db8:4f2a::17 if that helps the tech team, the site blocks me since yesterday",
        [("IP", "2001:db8:4f2a::17")],
    ),
    ("Quick q: do you ship to 97205? And is shipping free over $75?", []),
    (
        "---------- Forwarded message ---------\nFrom: Lena Hartmann <l.hartmann@example.de>\nDate: Mon, 3 Mar 2025 at 09:14\n"
        "Subject: Rechnung LG-827364\nTo: info@larkspurgoods.com\n\nHallo, the invoice for LG-827364 shows the wrong VAT number. "
        "Could you reissue it?\n\nThanks,\nLena Hartmann\n+49 30 5550 8812",
        [
            ("NAME", "Lena Hartmann"),
            ("EMAIL", "l.hartmann@example.de"),
            ("ORDER", "LG-827364"),
            ("PHONE", "+49 30 5550 8812"),
        ],
    ),
    (
        "Hi Siobhan,\nYour return for LG-193845 has been received at our Leeds warehouse and a refund of £64.99 is on its way.\n"
        "Kind regards,\nPriyanka | Returns Team",
        [("NAME", "Siobhan"), ("ORDER", "LG-193845"), ("NAME", "Priyanka")],
    ),
    (
        "Card: 5221-8505-4455-4512\nExp: 11/26\nCVV: 381\nplease just charge it, i cant get the checkout to work on my phone",
        [("CARD", "5221-8505-4455-4512")],
    ),
    ("visa ending 7302 was declined, tried 3 times. order total 1.299,00 €", []),
    ("Hi, I'm British and the plug on the kettle (model KT-220) is the EU type, can you swap it?", []),
    (
        "Delivery guy left the parcel at 18 Quincy Street, Apt 5, Somerville, MA 02143 but I live at 18 Quincy Street, Apt 15 - please tell him!!",
        [("ADDRESS", "18 Quincy Street, Apt 5, Somerville, MA 02143"), ("ADDRESS", "18 Quincy Street, Apt 15")],
    ),
    (
        "This is Rafael Ortega, calling about order LG-556019. Best number is 720-555-0163, or 503.555.0119 in the evenings.",
        [("NAME", "Rafael Ortega"), ("ORDER", "LG-556019"), ("PHONE", "720-555-0163"), ("PHONE", "503.555.0119")],
    ),
    ("The tracking says delivered to 94107 but nothing here. Tracking number 9400 1118 9922 3847 5612 09.", []),
    ("Can I pay with Discover? My card is 6011 9135 9332 0722.", [("CARD", "6011 9135 9332 0722")]),
    ("ok thx", []),
    (
        "Dear Ms. Achebe,\n\nThank you for contacting us. Unfortunately the Verona sofa is discontinued.\n\nYours sincerely,\nGwen Thackeray\nLarkspur Goods",
        [("NAME", "Achebe"), ("NAME", "Gwen Thackeray")],
    ),
    (
        "Please don't call my landline 020 7946 0381 anymore, use my mobile +44 7700 900872.",
        [("PHONE", "020 7946 0381"), ("PHONE", "+44 7700 900872")],
    ),
    ("The serial number on the box is S/N 4987680230029595, is it still under warranty? Bought 14/02/2024.", []),
    ("IMEI 350315920295241 - the phone you sold me is locked to a carrier. Need unlock.", []),
    ("EAN 4026394936455 is what's printed on the barcode, but the item inside is a different colour", []),
    (
        "Hey, Ingrid here from Solberg Interiors. We'd like to place a bulk order for 40 chairs. "
        "Can sales@larkspurgoods.com send a quote to isolberg@example.no?",
        [("NAME", "Ingrid"), ("EMAIL", "isolberg@example.no")],
    ),
    (
        "My account number with you is 55501478 I think? Or maybe thats my customer ID. Either way order LG-320594",
        [("ORDER", "LG-320594")],
    ),
    ("Hello Larkspur, the package 1Z4F83W20391846620 shows 'exception'. What does that mean?", []),
    (
        "I'm Amara Nwosu, bought the Linen duvet set twice by mistake - LG-871129 and LG-871133. Refund the second please. amara_n@example.com",
        [("NAME", "Amara Nwosu"), ("ORDER", "LG-871129"), ("ORDER", "LG-871133"), ("EMAIL", "amara_n@example.com")],
    ),
    (
        "Billing address: 640 Pine Street, Suite 300, Seattle, WA 98101\nShipping address: same",
        [("ADDRESS", "640 Pine Street, Suite 300, Seattle, WA 98101")],
    ),
    (
        "Social security number 529184437, I was told to provide it for the credit check on the furniture financing.",
        [("SSN", "529184437")],
    ),
    ("Hi! Quick one - does the 2-seater come in navy? Thx", []),
    (
        "We noticed a sign-in to your account from a new device (IP 198.51.100.23, Chrome on Windows). If this wasn't you, reset your password.",
        [("IP", "198.51.100.23")],
    ),
    ("That fixed it, the app syncs again.\n\nThanks for your help, Oskar", [("NAME", "Oskar")]),
    (
        "Please update my email from cfairbanks@example.co.uk to chloe.f.1990@example.com",
        [("EMAIL", "cfairbanks@example.co.uk"), ("EMAIL", "chloe.f.1990@example.com")],
    ),
    (
        "Re: your order LG-004218\n\n> When will it arrive?\n\nHi Yusuf, it's scheduled for delivery on Friday 13 June between 8am and 1pm.\n- Larkspur Goods",
        [("ORDER", "LG-004218"), ("NAME", "Yusuf")],
    ),
    ("Member no. 104-22-7781 doesn't work when I log in to the loyalty page", []),
    (
        "fyi the router's LAN IP is 192.168.1.254 and your smart hub only connects when it gets 192.168.1.37",
        [("IP", "192.168.1.254"), ("IP", "192.168.1.37")],
    ),
    (
        "Hi Chloe - yes, we can deliver to 9 Wellington Crescent, Manchester M14 6QT on Saturday. "
        "Please keep your phone (0161 496 0734) on.\nThanks, Ravi",
        [
            ("NAME", "Chloe"),
            ("ADDRESS", "9 Wellington Crescent, Manchester M14 6QT"),
            ("PHONE", "0161 496 0734"),
            ("NAME", "Ravi"),
        ],
    ),
    (
        "MY ORDER LG-739950 IS LATE AGAIN. THIRD TIME. CALL ME ON 07700 900215 OR I'M DISPUTING THE CHARGE.",
        [("ORDER", "LG-739950"), ("PHONE", "07700 900215")],
    ),
    (
        "hi there can i change the colour on order LG-618802 from oat to charcoal? thx - Meg",
        [("ORDER", "LG-618802"), ("NAME", "Meg")],
    ),
    (
        "Transfer details:\nIBAN NL06INGB3365148938\nBIC INGBNL2A\nName: Anouk de Jong",
        [("IBAN", "NL06INGB3365148938"), ("NAME", "Anouk de Jong")],
    ),
    ("Sorry, one more thing - the buzzer code is 4417#, flat 3.", []),
    ("The gift card 6035 7712 9908 4411 shows $0 balance but I never used it", []),
    (
        "Hello,\n\nI never got a confirmation email for order LG-250316. I used r.achebe77@example.org at checkout, can you check it's correct?\n\n"
        "Best wishes,\nRosalind",
        [("ORDER", "LG-250316"), ("EMAIL", "r.achebe77@example.org"), ("NAME", "Rosalind")],
    ),
    (
        "unsubscribe me pls. the link in your newsletter goes to https://mail.larkspurgoods.com/unsub?email=tgirard%40example.fr&sig=4b1f90ad and shows a 404",
        [("URL", "https://mail.larkspurgoods.com/unsub?email=tgirard%40example.fr&sig=4b1f90ad")],
    ),
    ("Can you explain this charge? LARKSPUR GOODS*LG-402277 $86.40 on 05/02", [("ORDER", "LG-402277")]),
    (
        "Re: Refund\n\nHi Jürgen,\nthe refund for LG-118943 was sent to DE73 8647 9385 4186 4115 16 on 2 May. Please allow 3-5 banking days.\n"
        "Best regards,\nElif",
        [("NAME", "Jürgen"), ("ORDER", "LG-118943"), ("IBAN", "DE73 8647 9385 4186 4115 16"), ("NAME", "Elif")],
    ),
    (
        "The courier said the address doesn't exist. It's 2211 Larchmont Blvd, Los Angeles, CA 90004, it definitely exists lol",
        [("ADDRESS", "2211 Larchmont Blvd, Los Angeles, CA 90004")],
    ),
    (
        "i'm not sure if i used my work or personal email, maybe hthackeray@example.com?",
        [("EMAIL", "hthackeray@example.com")],
    ),
    ("Version 10.0.2.15 of the desktop app crashes on startup.", []),
    (
        "Hi Ms. Qureshi, we see the last order was placed from 2001:db8:85a3::8a2e:370:7334 and shipped to a different city. Can you confirm it was you?",
        [("NAME", "Qureshi"), ("IP", "2001:db8:85a3::8a2e:370:7334")],
    ),
    (
        "Dear Customer,\n\nYour order LG-366780 has been dispatched and will arrive in 2-3 working days.\n\nKind regards,\nLarkspur Goods",
        [("ORDER", "LG-366780")],
    ),
    ("Hi Support,\nthe drawer handles (pack of 6, SKU HW-0612) are missing from the box.\nThanks", []),
    (
        "Dear Accounts Team,\nplease find our remittance for invoice INV-2025-00417, €1.840,00, paid from FR76 7225 2893 1275 8737 9738 455.\n"
        "Regards,\nThéo Girard\nFinance, Atelier Girard SARL",
        [("IBAN", "FR76 7225 2893 1275 8737 9738 455"), ("NAME", "Théo Girard")],
    ),
    (
        "the address on file (3150 W Sunnyside Ave #2F, Chicago, IL 60625) is old, please change to 5 Orchard Lane, Evanston, IL 60201",
        [("ADDRESS", "3150 W Sunnyside Ave #2F, Chicago, IL 60625"), ("ADDRESS", "5 Orchard Lane, Evanston, IL 60201")],
    ),
    (
        "When I enter my card 4720 5756 9210 9491 it says invalid, but my bank says it's fine??",
        [("CARD", "4720 5756 9210 9491")],
    ),
    (
        "my new card is 5346001251171617 exp 0928 cvc 112 - replace the old one on my subscription",
        [("CARD", "5346001251171617")],
    ),
    ("The total says $1,049.97 for 3 items, that's wrong, should be $949.97 with the 10% code", []),
    ("Does the Oslo 3-seater fit through a 76 cm door? Measurements on the site say 82 cm deep.", []),
    (
        "Hi Tobias,\n\nthanks for the photos. We'll send a courier to collect the damaged table on 17.06.2025 between 08:00 and 12:00.\n\n"
        "Best,\nLarkspur Goods Customer Service",
        [("NAME", "Tobias")],
    ),
    (
        "this is urgent - someone used my account. Orders LG-902214, LG-902215 and LG-902231 are not mine. "
        "My email is kmensah.home@example.com and my number is +1 (212) 555-0190",
        [
            ("ORDER", "LG-902214"),
            ("ORDER", "LG-902215"),
            ("ORDER", "LG-902231"),
            ("EMAIL", "kmensah.home@example.com"),
            ("PHONE", "+1 (212) 555-0190"),
        ],
    ),
    (
        "Yes that's right, SSN is 372-81-5540. I submitted the financing application for order LG-447702 this morning.",
        [("SSN", "372-81-5540"), ("ORDER", "LG-447702")],
    ),
    (
        "Hey Dmitri, the fix is in app v3.4.1 - update and the login loop should stop. Cheers, Hanna",
        [("NAME", "Dmitri"), ("NAME", "Hanna")],
    ),
    (
        "Is it possible to split the payment? Half on my Visa 4839512416422965 and half on PayPal",
        [("CARD", "4839512416422965")],
    ),
    (
        "My IBAN is ES72 5229 2271 5635 4265 8706 - please refund the €120 deposit there.\nThanks, Joaquín Herrera",
        [("IBAN", "ES72 5229 2271 5635 4265 8706"), ("NAME", "Joaquín Herrera")],
    ),
    ("Our office wifi public IP is 203.0.113.14, could you whitelist it for the B2B portal?", [("IP", "203.0.113.14")]),
    (
        "pls send replacement to my work: 1190 Kettle Creek Road, Suite 210, Raleigh, NC 27606 - reception will sign",
        [("ADDRESS", "1190 Kettle Creek Road, Suite 210, Raleigh, NC 27606")],
    ),
    ("Did you get my email?\n\nSent from my iPhone", []),
    ("Your password reset code is 730591. It expires in 10 minutes.", []),
    (
        "Hi, I ordered the Brooklyn table lamp x2 (SKU LT-4410), qty 2, unit price $64.50. One arrived without the bulb.",
        [],
    ),
    ("Just spoke to your colleague on chat. Ref no. 00481726. She said to email the photos here.", []),
    ("hello i am from Canada, do you ship to Canada? what are duties like", []),
    (
        "Hiya Fatima, sorry for the mix-up! The correct tracking link is https://track.example.com/parcel?id=JD014600007125539848 "
        "- it should update tonight. Cheers, Owen",
        [("NAME", "Fatima"), ("URL", "https://track.example.com/parcel?id=JD014600007125539848"), ("NAME", "Owen")],
    ),
    (
        "Hi, this is Wen Jie Huang, I'm trying to use my Amex 3400 265841 21697 but the checkout says the billing ZIP doesn't match. My ZIP is 10025.",
        [("NAME", "Wen Jie Huang"), ("CARD", "3400 265841 21697")],
    ),
    (
        "can you resend the receipt to harriet.pem@example.co.uk, the old one went to hp_old_addr@example.net",
        [("EMAIL", "harriet.pem@example.co.uk"), ("EMAIL", "hp_old_addr@example.net")],
    ),
    ("I'm Back! lol. same issue as last week with the sofa legs wobbling", []),
    (
        "we're a small cafe, our delivery address is 3 Mill Lane, Cambridge CB2 1RX, deliveries before 9am only please",
        [("ADDRESS", "3 Mill Lane, Cambridge CB2 1RX")],
    ),
    (
        "Dear Mr. Nilsson,\n\nwe regret that the Stockholm armchair you ordered (LG-703356) is delayed until week 32.\n\nKind regards\nMaja Eriksson\nCustomer Care",
        [("NAME", "Nilsson"), ("ORDER", "LG-703356"), ("NAME", "Maja Eriksson")],
    ),
    ("The barcode says 0 39146 44695 8 and the box says 'Lumo desk lamp', but inside was a phone charger.", []),
    (
        "Hi,\nPlease find below my bank details for the refund:\nAccount name: Mrs K Oyelaran\nIBAN: GB24 LOYD 5599 8339 3866 13\nThanks",
        [("NAME", "K Oyelaran"), ("IBAN", "GB24 LOYD 5599 8339 3866 13")],
    ),
    # ------------------------------------------------------------------------------------------
    # Addresses, European formats, signatures
    # ------------------------------------------------------------------------------------------
    (
        "Ship to:\nMaya Lindqvist\n48 Harbour Street\nFlat 2\nBristol BS1 5TY\n\nThanks,\nMaya Lindqvist",
        [("NAME", "Maya Lindqvist"), ("ADDRESS", "48 Harbour Street\nFlat 2\nBristol BS1 5TY")],
    ),
    (
        "hey! Sam here, order LG-221904, the rug is a totally different shade from the photo. can i swap for the 160x230?",
        [("NAME", "Sam"), ("ORDER", "LG-221904")],
    ),
    (
        "Numéro: +33 6 39 98 42 17\nCommande LG-610045, le canapé est arrivé avec un pied cassé. Merci!",
        [("PHONE", "+33 6 39 98 42 17"), ("ORDER", "LG-610045")],
    ),
    (
        "Hi, I'm Camille Dubois from Lyon. My number is +33 1 99 00 51 26 and the order is LG-338172.",
        [("NAME", "Camille Dubois"), ("PHONE", "+33 1 99 00 51 26"), ("ORDER", "LG-338172")],
    ),
    (
        "Can someone call me back on 0151 2340 5567? Es geht um die Bestellung LG-584431. Danke!",
        [("PHONE", "0151 2340 5567"), ("ORDER", "LG-584431")],
    ),
    (
        "The driver has the wrong number, it should be +49 151 2340 7781 not +49 151 2340 7718",
        [("PHONE", "+49 151 2340 7781"), ("PHONE", "+49 151 2340 7718")],
    ),
    ("2 x Oak Shelf 80cm @ €59,00 = €118,00, 1 x Wall bracket set @ €12,50. Invoice date 01.07.2025.", []),
    ("tracking JD014600006193320471 stuck in Leipzig since 12.06.", []),
    (
        "hi this is Priti from accounts at Hollis & Baker Ltd - can we pay invoices by BACS? our ref is PO-77120",
        [("NAME", "Priti")],
    ),
    (
        "Cheers for sorting the refund so fast!\n\nBest,\nEilidh Ross\n07700 900653",
        [("NAME", "Eilidh Ross"), ("PHONE", "07700 900653")],
    ),
    (
        "Please do NOT leave it with the neighbours at 46 Quarry Road. I'm at 44 Quarry Road, Sheffield S11 8YT.",
        [("ADDRESS", "46 Quarry Road"), ("ADDRESS", "44 Quarry Road, Sheffield S11 8YT")],
    ),
    (
        "I'm Hiroshi Tanaka. The voucher code GIFT-8820-KX11 didn't work for order LG-909132.",
        [("NAME", "Hiroshi Tanaka"), ("ORDER", "LG-909132")],
    ),
    ("The invoice shows VAT ID DE298761534 - is that yours? Our accountant needs it", []),
    (
        "I transferred €212,40 from NL10 ABNA 8071 2399 15 yesterday with reference LG-143375.\n\nThanks,\nBram Peeters",
        [("IBAN", "NL10 ABNA 8071 2399 15"), ("ORDER", "LG-143375"), ("NAME", "Bram Peeters")],
    ),
    (
        "Hey, Grant here - just checking the assembly service is booked for Sat 21 June, 10am, order LG-482170",
        [("NAME", "Grant"), ("ORDER", "LG-482170")],
    ),
    (
        "Hello Mr Haddad, thank you for your email. Your warranty claim WC-20931 has been approved.\nRegards,\nTeresa Lowe",
        [("NAME", "Haddad"), ("NAME", "Teresa Lowe")],
    ),
    ("The cable I got is version 2.1 not 2.0, is that a problem for my 4K monitor at 144 Hz?", []),
    (
        "uh my credit card number is 5191 9392 0685 3555 and i need to change the expiry, its 04/28 now",
        [("CARD", "5191 9392 0685 3555")],
    ),
    (
        "Dear Larkspur Goods,\nRe: complaint 2025/0611-4\nI have written three times now. My order LG-027761 arrived smashed.\n"
        "Yours sincerely,\nBartholomew Finch\n22 Abbotsford Terrace\nEdinburgh EH10 5DX",
        [
            ("ORDER", "LG-027761"),
            ("NAME", "Bartholomew Finch"),
            ("ADDRESS", "22 Abbotsford Terrace\nEdinburgh EH10 5DX"),
        ],
    ),
    (
        "Hey Camille! Just confirming we received the return. Refund of €79,00 is on its way.\n- Sophie",
        [("NAME", "Camille"), ("NAME", "Sophie")],
    ),
    ("Whats ur returns address? I want to send back the mirror.", []),
    (
        "The IP address of the printer is 10.0.0.42, and the hub is at 10.0.0.1, they can't see each other",
        [("IP", "10.0.0.42"), ("IP", "10.0.0.1")],
    ),
    ("Update to firmware 1.2.8.4 bricked the smart bulb. Model SB-100, bought at the Leeds store.", []),
    (
        "This is Ana Lúcia Ferreira, I placed order LG-770218 as a guest using analu.ferreira@example.com.br - can it be linked to my account?",
        [("NAME", "Ana Lúcia Ferreira"), ("ORDER", "LG-770218"), ("EMAIL", "analu.ferreira@example.com.br")],
    ),
    ("Hi all, quick note: the showroom is closed on 25.12. and 26.12. Have a great holiday!\nLarkspur Goods", []),
    (
        "ok so the payment went thru on my Mastercard 2221 7360 8710 0838 but the order page says failed?? order LG-306112",
        [("CARD", "2221 7360 8710 0838"), ("ORDER", "LG-306112")],
    ),
    (
        "Please cancel the subscription for the account linked to tanaka.h@example.jp",
        [("EMAIL", "tanaka.h@example.jp")],
    ),
    (
        "Hi, my social security number is 145-92-6603 and my DOB is 04/17/1986, the credit form won't accept it.",
        [("SSN", "145-92-6603")],
    ),
    (
        "I live at Flat 4, 61 Marchmont Road, Edinburgh EH9 1HU and the buzzer doesn't work, so please call.",
        [("ADDRESS", "Flat 4, 61 Marchmont Road, Edinburgh EH9 1HU")],
    ),
    ("Brilliant, that worked. Thanks, Team Larkspur!", []),
    (
        "Hi Dana,\nI've updated your billing address to 902 Maple Court, Boulder, CO 80302 and the card to the one ending 1133.\nThanks,\nMiguel",
        [("NAME", "Dana"), ("ADDRESS", "902 Maple Court, Boulder, CO 80302"), ("NAME", "Miguel")],
    ),
    (
        "My Apple Pay uses the card 2487 3153 5709 7880 if that helps to find the payment",
        [("CARD", "2487 3153 5709 7880")],
    ),
    ("Promo code WELCOME10 expired on 31/05/2025 but the banner says valid until 30/06", []),
    ("Please call me back. 617-555-0121. Thx, Harriet", [("PHONE", "617-555-0121"), ("NAME", "Harriet")]),
    ("ordernumber LG-514420 / invoice 2025-1189 / customer 8871-2203", [("ORDER", "LG-514420")]),
    (
        "Phone: 404.555.0186\nAlt phone: 206-555-0144\nBest time: after 6pm EST",
        [("PHONE", "404.555.0186"), ("PHONE", "206-555-0144")],
    ),
    (
        "Dear Oliver Brandt,\n\nYour Larkspur Goods account password was changed on 14 March 2025 at 22:17 from IP 192.0.2.144. "
        "If this wasn't you, contact us.\n\nLarkspur Goods Security",
        [("NAME", "Oliver Brandt"), ("IP", "192.0.2.144")],
    ),
    ("hi i'm trying to log in but it keeps saying 'account locked'. what do i do", []),
    ("Would you price-match? Argos has the same kettle for £39.99 vs your £44.99", []),
    (
        "Sent from my Galaxy\n\n-------- Original message --------\nFrom: Larkspur Goods <noreply@larkspurgoods.com>\n"
        "Date: 06/02/2025 14:03 (GMT+00:00)\nSubject: Your order LG-860033 has shipped\n\nwhere is it though",
        [("ORDER", "LG-860033")],
    ),
    (
        "Hi Jo, the engineer will come on Thu between 12-4. Please make sure someone's home.\nThanks, Priscilla at Larkspur Goods",
        [("NAME", "Jo"), ("NAME", "Priscilla")],
    ),
    ("Receipt no. 4044 8688 4068 4525 - do you need anything else for the exchange?", []),
    (
        "My Discover 6506 7284 4578 9581 got flagged for fraud when I ordered, can you retry the charge on LG-275540?",
        [("CARD", "6506 7284 4578 9581"), ("ORDER", "LG-275540")],
    ),
    ("Dear Hannah,\n\nThank you for your patience.\n\nKind regards,\nThe Larkspur Goods Team", [("NAME", "Hannah")]),
    (
        "Hi! I'm moving next week. From Monday my address will be 27 Kingsley Road, Leeds LS6 2AB. Please update order LG-391006.",
        [("ADDRESS", "27 Kingsley Road, Leeds LS6 2AB"), ("ORDER", "LG-391006")],
    ),
    ("URGENT!!! LG-604417 LG-604418", [("ORDER", "LG-604417"), ("ORDER", "LG-604418")]),
    (
        "Could you check what IPs our staff logged in from? I see 198.51.100.7 and 198.51.100.91 in the audit log, neither is our office.",
        [("IP", "198.51.100.7"), ("IP", "198.51.100.91")],
    ),
    ("I'm Confused about the delivery fee - it said free over £50 and my basket was £52.30.", []),
    # ------------------------------------------------------------------------------------------
    # URLs, payment details, SSNs, more look-alikes
    # ------------------------------------------------------------------------------------------
    (
        "my email is lwhitley@example.com. again, lwhitley@example.com. why do i keep getting the error",
        [("EMAIL", "lwhitley@example.com")],
    ),
    (
        "Hi Kofi,\nyour new delivery date for LG-258801 is Wed 9 July. We've texted the details to 07700 900128 as well.\nBest,\nNina",
        [("NAME", "Kofi"), ("ORDER", "LG-258801"), ("PHONE", "07700 900128"), ("NAME", "Nina")],
    ),
    (
        "Order confirmation: https://www.larkspurgoods.com/orders/view?order_token=f3a9c1e8b7d24a60&email=esi.boateng%40example.com",
        [
            (
                "URL",
                "https://www.larkspurgoods.com/orders/view?order_token=f3a9c1e8b7d24a60&email=esi.boateng%40example.com",
            )
        ],
    ),
    (
        "Here's the product I mean: https://www.larkspurgoods.com/products/arden-rattan-chair?colour=natural&size=large",
        [],
    ),
    (
        "Check this out https://www.larkspurgoods.com/sale?utm_source=newsletter&utm_medium=email&utm_campaign=summer25",
        [],
    ),
    (
        "Product page https://www.larkspurgoods.com/p?product_id=88412 shows the wrong dimensions (says 120 x 60 cm, it's 100 x 50)",
        [],
    ),
    (
        "Click to confirm your email: https://larkspurgoods.com/confirm#token=7d2e0b9f4c1a88e3",
        [("URL", "https://larkspurgoods.com/confirm#token=7d2e0b9f4c1a88e3")],
    ),
    (
        "Reset link: https://www.larkspurgoods.com/reset?user=ftrevino88&code=559201",
        [("URL", "https://www.larkspurgoods.com/reset?user=ftrevino88&code=559201")],
    ),
    (
        "Hi Valentina, thank you! Your account ID is in the link we sent (https://www.larkspurgoods.com/account?id=4410982), "
        "just click it to verify.\nRegards,\nPatrick",
        [("NAME", "Valentina"), ("URL", "https://www.larkspurgoods.com/account?id=4410982"), ("NAME", "Patrick")],
    ),
    (
        "Hi, I'm Olumide. Paid with card 3457 298089 64140 (Amex) - but it was declined. Can you try again?",
        [("NAME", "Olumide"), ("CARD", "3457 298089 64140")],
    ),
    (
        "Hi, the Discover card I used is 6011-6261-9956-0893. Please refund there, not store credit.",
        [("CARD", "6011-6261-9956-0893")],
    ),
    (
        "Card: 4456 2679 0052 0137\nName: Siobhan O'Leary\nExpiry: 09/27",
        [("CARD", "4456 2679 0052 0137"), ("NAME", "Siobhan O'Leary")],
    ),
    ("loyalty card 4088 4559 9506 3247 isn't showing my points from last month", []),
    ("Our PO number is 4500012345 and the delivery note says DN-2025-0771", []),
    (
        "I'm Leila Haddad, the account holder. The transfer came from BE43 9639 2545 2410.",
        [("NAME", "Leila Haddad"), ("IBAN", "BE43 9639 2545 2410")],
    ),
    (
        "Please refund to AT18 2985 2604 9268 2323 (BIC BKAUATWW).\nThanks, Sebastian",
        [("IBAN", "AT18 2985 2604 9268 2323"), ("NAME", "Sebastian")],
    ),
    (
        "Refund to IE35AIBK27996544579030 please. Regards, Niamh Gallagher",
        [("IBAN", "IE35AIBK27996544579030"), ("NAME", "Niamh Gallagher")],
    ),
    (
        "Swiss customer here - can I get refunded to CH66 3440 2756 2819 8127 5? Your form only takes 22 characters",
        [("IBAN", "CH66 3440 2756 2819 8127 5")],
    ),
    ("IBAN: GB39 HBUK 2811 0279 6233 67, sort code 28-11-02", [("IBAN", "GB39 HBUK 2811 0279 6233 67")]),
    ("tel. 040 3861 4420 (Büro), mobil 0171 9924 3301", [("PHONE", "040 3861 4420"), ("PHONE", "0171 9924 3301")]),
    (
        "Hi Felix, we tried to reach you on +49 89 4432 1987 but no answer. Please call us back about order LG-655274.\nThanks, Lukas",
        [("NAME", "Felix"), ("PHONE", "+49 89 4432 1987"), ("ORDER", "LG-655274"), ("NAME", "Lukas")],
    ),
    ("Bestellnummer LG-481990, Lieferung am 12.07. nicht möglich", [("ORDER", "LG-481990")]),
    ("The courier card says 'Sorry we missed you' - ref 4417 2290 3318 5526. Can I rebook?", []),
    ("My phone number changed, new one: (503) 555-0152", [("PHONE", "(503) 555-0152")]),
    ("2x Fenwick mugs, 1x Harlow teapot, to be collected at the 5th Avenue store", []),
    ("I ordered 2 Brooklyn Street Lamps (SKU LT-7720) and only one came.", []),
    ("Hi, Aria lamp arrived with a broken shade, order LG-338019", [("ORDER", "LG-338019")]),
    (
        "Dear Sales,\nWe'd like a quote for 120 units of the Fenwick mug. Please reply to procurement@example.com or to me directly "
        "at jmoreau@example.com.\nRegards,\nJulien Moreau\nHead of Procurement",
        [("EMAIL", "jmoreau@example.com"), ("NAME", "Julien Moreau")],
    ),
    (
        "can i change delivery to my office, its 250 Harbor View Rd, Unit 12, Portland, ME 04101",
        [("ADDRESS", "250 Harbor View Rd, Unit 12, Portland, ME 04101")],
    ),
    ("the app says my IP is 172.16.4.20 - is that why prices are in euros?", [("IP", "172.16.4.20")]),
    ("Error 503 Service Unavailable at 12:03:44 on checkout, request id 7f3c-22a1-9e04", []),
    ("Hello there! Can I pay by invoice as a business customer?", []),
    (
        "Hi Mrs Fairbanks, your chair is ready for collection at the Leeds store (Unit 7, Kirkstall Retail Park). "
        "Opening hours 9:00-17:30.\nKind regards,\nLarkspur Goods Leeds",
        [("NAME", "Fairbanks")],
    ),
    ("Dear Valued Customer, our summer sale starts Friday! Up to 40% off sofas.\nThanks, Larkspur Marketing", []),
    ("hi im ordering for my mum, can the card holder name be different from the delivery name?", []),
    ("Called 3 times, waited 45 min each. Case #55102. Not happy.", []),
    (
        "Dear Mr. van Dijk,\n\nwe have received your payment of €349,00 for order LG-271845.\n\nMet vriendelijke groet,\nLarkspur Goods",
        [("NAME", "van Dijk"), ("ORDER", "LG-271845")],
    ),
    ("Pieter van Dijk here - thanks, payment confirmation received!", [("NAME", "Pieter van Dijk")]),
    (
        "Hi, my name is Sören Lindqvist, I ordered a lamp for a friend and it should go to 15 Ashgrove Close, Harrogate HG2 0PW",
        [("NAME", "Sören Lindqvist"), ("ADDRESS", "15 Ashgrove Close, Harrogate HG2 0PW")],
    ),
    ("Could you confirm the order went through? I got charged 2x $19.99 on 06/14.", []),
    (
        "I'm Agnieszka Nowak, order LG-910028. The email you have for me (a.nowak.pl@example.com) is old - please use agnowak@example.org.",
        [
            ("NAME", "Agnieszka Nowak"),
            ("ORDER", "LG-910028"),
            ("EMAIL", "a.nowak.pl@example.com"),
            ("EMAIL", "agnowak@example.org"),
        ],
    ),
    ("Hi Agnieszka,\nDone - I've updated it.\nBest,\nConor", [("NAME", "Agnieszka"), ("NAME", "Conor")]),
    ("We'll need the last 4 of your SSN (6603) to verify, please don't send the full number over chat.", []),
    (
        "My SSN is 287-40-9915 and my wife's is 518-76-0432, both on the financing application.",
        [("SSN", "287-40-9915"), ("SSN", "518-76-0432")],
    ),
    ("ssn: 604331187", [("SSN", "604331187")]),
    (
        "Please don't text me from those 1-800 numbers, I only have a landline: 0113 496 0297",
        [("PHONE", "0113 496 0297")],
    ),
    ("The package weighs 2.5 kg and the box is 60x40x30cm, is that within the limits for next-day delivery?", []),
    (
        "Meg here again (order LG-618811) - the colour change went through, thank you",
        [("NAME", "Meg"), ("ORDER", "LG-618811")],
    ),
    # ------------------------------------------------------------------------------------------
    # Chat transcripts, sign-off variety, capitalised non-names
    # ------------------------------------------------------------------------------------------
    (
        "[10:02] Customer: hi i need help with my order\n[10:02] Agent: Hi, this is Ruth! Can I have your order number?\n"
        "[10:03] Customer: LG-447391\n[10:03] Agent: Thanks. And the email on the order?\n[10:04] Customer: bea.k.holm@example.dk",
        [("NAME", "Ruth"), ("ORDER", "LG-447391"), ("EMAIL", "bea.k.holm@example.dk")],
    ),
    ("Hi Ruth, thanks so much, that's sorted then!", [("NAME", "Ruth")]),
    (
        "Nobody here has ordered a 'Harlow teapot', why did I get a delivery confirmation for LG-382260?",
        [("ORDER", "LG-382260")],
    ),
    ("Delivery here was two days late and the box was open. Order LG-593021.", [("ORDER", "LG-593021")]),
    ("This is Ridiculous. Third email. Still no refund.", []),
    ("Hi guys, is the Fenwick mug dishwasher safe?", []),
    (
        "Good morning,\nplease cancel my order LG-120457, I found it cheaper elsewhere.\nRegards,\nDr. Amelia Stone",
        [("ORDER", "LG-120457"), ("NAME", "Amelia Stone")],
    ),
    (
        "Hello,\nplease send us the updated price list for 2026.\n\nBest regards / Mit freundlichen Grüßen\nKatrin Vogel\n"
        "Vogel Innenarchitektur GmbH\nTel. +49 40 3861 4477\nk.vogel@example.de",
        [("NAME", "Katrin Vogel"), ("PHONE", "+49 40 3861 4477"), ("EMAIL", "k.vogel@example.de")],
    ),
    (
        "Hi, Anne-Marie Duval here. The parcel was left at 7 Rosemary Mews, London W2 3PS instead of number 17. Can you check with the driver?",
        [("NAME", "Anne-Marie Duval"), ("ADDRESS", "7 Rosemary Mews, London W2 3PS")],
    ),
    (
        "Still no sign of LG-860417.\n\nThanks,\nRory McAllister\nSent from my iPad",
        [("ORDER", "LG-860417"), ("NAME", "Rory McAllister")],
    ),
    (
        "my name is sun-hee park and my order LG-224518 is missing one chair",
        [("NAME", "sun-hee park"), ("ORDER", "LG-224518")],
    ),
    (
        "Name: Park, Sun-hee\nOrder: LG-224518\nPhone: +1 206-555-0173",
        [("NAME", "Park, Sun-hee"), ("ORDER", "LG-224518"), ("PHONE", "+1 206-555-0173")],
    ),
    ("I'm Unable to log in since the update, it just spins.", []),
    ("Hey folks, what's the warranty on the Oslo recliner? 2 years or 5?", []),
    ("Hello everyone, is anyone here? The chat's been silent for 10 min", []),
    (
        "Please confirm receipt of payment for invoice INV-88120 (€2.310,00).\n\nRegards,\nFinance Department\nNorthwind Trading",
        [],
    ),
    ("I'm Vegan so I need to know if the leather-look chair has any animal products", []),
    ("Thanks, Everyone! The team at the Leeds store was super helpful.", []),
    (
        "Hi, Jean-Luc Perrin, order LG-351870. Rappelez-moi au +33 6 39 98 11 02 svp.",
        [("NAME", "Jean-Luc Perrin"), ("ORDER", "LG-351870"), ("PHONE", "+33 6 39 98 11 02")],
    ),
    (
        "Please correct the spelling on my invoice, it should be D'Angelo with an apostrophe.\nThanks, Marco D'Angelo",
        [("NAME", "Marco D'Angelo"), ("NAME", "D'Angelo")],
    ),
    (
        "Hi Ines,\nyour return label is attached. Please drop the parcel at any post office before 30.06.2025.\n\n"
        "Many thanks,\nTeodora\n(Larkspur Goods, Returns)",
        [("NAME", "Ines"), ("NAME", "Teodora")],
    ),
    ("BIOS version 1.15.0.2 is installed on the mini PC, do I need to update it for Windows 11?", []),
    ("Chrome 124.0.6367.91 on Windows 10, checkout button does nothing", []),
    (
        "The smart lock's IP is fe80::1c2d:3e4f:5a6b:7c8d and it shows offline in the app",
        [("IP", "fe80::1c2d:3e4f:5a6b:7c8d")],
    ),
    (
        "Server logs: 2025-06-12 08:14:55 GET /checkout 500 client=203.0.113.201 ua=Mozilla/5.0",
        [("IP", "203.0.113.201")],
    ),
    ("Our integration gets 'connection from [2001:db8:aa10::5]:443 refused'", [("IP", "2001:db8:aa10::5")]),
    ("ZIP code 97205-1234 is correct, the system keeps saying invalid", []),
    ("Postcode LS6 2AB - do you deliver there on Saturdays?", []),
    ("The box says 'Made in Portugal, batch 22-0614, lot 7781'", []),
    (
        "Hi Luca,\nthe replacement cushion covers are on their way: LG-664203, 2 parcels. Tracking: 1Z4F83W20391877730 and "
        "1Z4F83W20391877749.\nRegards,\nElena",
        [("NAME", "Luca"), ("ORDER", "LG-664203"), ("NAME", "Elena")],
    ),
    (
        "Please add my husband as an authorised contact - his number is 07700 900384.\nThanks,\nHelen",
        [("PHONE", "07700 900384"), ("NAME", "Helen")],
    ),
    ("yo, order LG-700245 is still 'processing' after 6 days. what gives", [("ORDER", "LG-700245")]),
    ("My card is a Visa 4135431226190 (old 13-digit one) - does your checkout accept it?", [("CARD", "4135431226190")]),
    ("card 2720-6485-4363-4076 for the deposit pls", [("CARD", "2720-6485-4363-4076")]),
    (
        "I paid with 2319 6565 1606 1133 and got an email saying 'payment failed' and then another saying 'order confirmed' for LG-118834. Which is it?",
        [("CARD", "2319 6565 1606 1133"), ("ORDER", "LG-118834")],
    ),
    (
        "Morning! Zara here. Can I add a second cover to my order before it ships? LG-587740",
        [("NAME", "Zara"), ("ORDER", "LG-587740")],
    ),
    (
        "Hi Zara, yes - added, and the extra £24.00 was charged to your card ending 6995.\n- Tom",
        [("NAME", "Zara"), ("NAME", "Tom")],
    ),
    (
        "i think someone hacked my acct - a password reset came from 2001:db8:ff00:42::8329 at 3am",
        [("IP", "2001:db8:ff00:42::8329")],
    ),
    # ------------------------------------------------------------------------------------------
    # Long messages with several identifiers, forwarded mail, more negatives
    # ------------------------------------------------------------------------------------------
    (
        "ok so long story. I ordered the oak dining set on the 3rd (order LG-148290), paid with my visa 4170-7925-8820-2281, and it "
        "was supposed to arrive last Tuesday. Nobody came. I called your line twice and was told it'd be rescheduled, got a text on "
        "my mobile (07700 900519) saying Thursday 8-12, took the morning off work, nothing again. The driver apparently tried "
        "12 Orchard Way, but I'm at 12 Orchard Way, Flat B, Reading RG1 4QT - the flat letter is on the order!! Please sort this "
        "out or refund me the £1,180.00.\n\nThanks,\nGeorgia Whitcombe",
        [
            ("ORDER", "LG-148290"),
            ("CARD", "4170-7925-8820-2281"),
            ("PHONE", "07700 900519"),
            ("ADDRESS", "12 Orchard Way"),
            ("ADDRESS", "12 Orchard Way, Flat B, Reading RG1 4QT"),
            ("NAME", "Georgia Whitcombe"),
        ],
    ),
    (
        "Hi Georgia, I'm so sorry. I've rebooked for Saturday with a note about Flat B and refunded the £45.00 delivery fee.\n- Imran",
        [("NAME", "Georgia"), ("NAME", "Imran")],
    ),
    (
        "From: Kemi Oyelaran <koyelaran@example.com>\nSent: 14 May 2025 09:12\nTo: returns@larkspurgoods.com\n"
        "Cc: d.oyelaran@example.com\nSubject: FW: damaged mirror LG-372994\n\nForwarding my husband's photos, see below.\n\n"
        "Thanks,\nKemi Oyelaran\n\n> From: d.oyelaran@example.com\n> the mirror has a crack across the corner",
        [
            ("NAME", "Kemi Oyelaran"),
            ("EMAIL", "koyelaran@example.com"),
            ("EMAIL", "d.oyelaran@example.com"),
            ("ORDER", "LG-372994"),
        ],
    ),
    (
        "Ok. Name: Ethan Caldwell. Order: lg-775510. Issue: the bed slats are 2 short.",
        [("NAME", "Ethan Caldwell"), ("ORDER", "lg-775510")],
    ),
    (
        "Hello, this is Olga from Larkspur Goods. Your kitchen measurement appointment is confirmed for 11.08.2025, 10:30-11:30 "
        "at 9 Lindenhof Way, Cheltenham GL50 2QT.",
        [("NAME", "Olga"), ("ADDRESS", "9 Lindenhof Way, Cheltenham GL50 2QT")],
    ),
    (
        "The invoice lists my old address 71 Beech Grove, Leeds LS8 1QF, please reissue it with 3 Station Road, Otley LS21 3HX",
        [("ADDRESS", "71 Beech Grove, Leeds LS8 1QF"), ("ADDRESS", "3 Station Road, Otley LS21 3HX")],
    ),
    ("Hi! Can I pick up from the store instead? My postcode is LS21 3HX so Leeds is closest", []),
    ("I want to dispute charge #88213 of $342.18 posted 07/03/2025", []),
    ('Re: LG TV 55" OLED (model OLED55C36LC) - is it compatible with your Slim wall bracket?', []),
    ("the LG-branded fridge isn't something you sell, right? just checking", []),
    ("Can I order the LG 27UP850 monitor through you? Price was 399 €", []),
    (
        "Thanks for the quick reply.\nKind regards,\nSanjay Mehta\nFlat 12, 40 Canal Street\nManchester M1 3HP\nTel: +44 161 496 0811",
        [
            ("NAME", "Sanjay Mehta"),
            ("ADDRESS", "Flat 12, 40 Canal Street\nManchester M1 3HP"),
            ("PHONE", "+44 161 496 0811"),
        ],
    ),
    (
        "Hi, this is Yaw Asante. Card 5469 6859 7471 1153 was charged but the order didn't go through. Email y.asante@example.com",
        [("NAME", "Yaw Asante"), ("CARD", "5469 6859 7471 1153"), ("EMAIL", "y.asante@example.com")],
    ),
    (
        "Hi Yaw, the payment was only authorised, not captured - the hold on your card will drop in 3-5 days.\nBest,\nMarta",
        [("NAME", "Yaw"), ("NAME", "Marta")],
    ),
    (
        "my accnt email: g.solis-ramos@example.mx , phone 646-555-0109",
        [("EMAIL", "g.solis-ramos@example.mx"), ("PHONE", "646-555-0109")],
    ),
    ("Qty 4 x SKU EL-2207 + 2 x SKU EL-2208 - total 6 items, €239,60 incl. VAT", []),
    ("I was charged in USD instead of GBP: $84.12 vs the £66.00 listed", []),
    (
        "order LG-309918 and LG-309981 (yes the numbers look alike lol)",
        [("ORDER", "LG-309918"), ("ORDER", "LG-309981")],
    ),
    (
        "Hi there, I'm Ivan. I can't find where to enter our VAT number (GB284 7751 36) at checkout.",
        [("NAME", "Ivan")],
    ),
    ("Order #lg-840022 - still waiting", [("ORDER", "#lg-840022")]),
    (
        "Our company IBAN changed - new one: FR76 4933 2757 6448 9524 2643 246. Please update your supplier records.\n"
        "Regards,\nÉlodie Martin\nComptabilité, Maison Martin SAS",
        [("IBAN", "FR76 4933 2757 6448 9524 2643 246"), ("NAME", "Élodie Martin")],
    ),
    ("Quick question about delivery times to Ireland - is it 3-5 or 5-7 working days?", []),
    ("The MAC address on the back of the hub is 9C:3D:CF:12:AB:07, does that help?", []),
    ("hi Dear, my order LG-512987 never arrived", [("ORDER", "LG-512987")]),
    (
        "To whom it may concern,\n\nI am writing regarding order LG-994105, which was delivered incomplete on 2 June.\n\n"
        "Yours faithfully,\n\nMargaret Okafor (Mrs)",
        [("ORDER", "LG-994105"), ("NAME", "Margaret Okafor")],
    ),
    (
        "Callback requested: +44 (0)20 7946 0514, anytime before 6pm. Re: LG-260338",
        [("PHONE", "+44 (0)20 7946 0514"), ("ORDER", "LG-260338")],
    ),
    ("+44 20 7946 0917 is my work number, best reached 9-5 Mon-Fri", [("PHONE", "+44 20 7946 0917")]),
    ("Sorry, typo - I meant order LG-700425, not LG-700245", [("ORDER", "LG-700425"), ("ORDER", "LG-700245")]),
    (
        "Hi, I'm Tariq. The Wi-Fi plug shows IP 192.168.0.112 in my router but the app says 'device not found'.",
        [("NAME", "Tariq"), ("IP", "192.168.0.112")],
    ),
    (
        "Thanks, Tariq - can you try resetting the plug (hold 10 s) and re-adding it? App version should be 5.2.0 or later.\n"
        "Regards,\nSupport Team",
        [("NAME", "Tariq")],
    ),
    (
        "Dear Customer Services, please find attached my receipt for £18.50.\nRegards, A. Mensah-Bonsu",
        [("NAME", "A. Mensah-Bonsu")],
    ),
    ("Hi, it's me again, still nothing on the refund. The original payment was 12/05 for $129.00.", []),
    (
        "My new number is 312.555.0139 and my new email is ravi.s.iyer@example.in",
        [("PHONE", "312.555.0139"), ("EMAIL", "ravi.s.iyer@example.in")],
    ),
    ("Dear Hiring Team, I saw you're hiring for the Leeds warehouse. Is there an application form?", []),
    ("Hi Customer Care, just wanted to say the new sofa is fab!", []),
    ("Is the Cyber Monday discount stacking with my student code?", []),
    ("Hello, your review was published.\n\nRegards,\nLarkspur Goods Customer Experience", []),
    ("Delivery window: 07:00-11:00 on 2025-07-14. Driver will call 30 min before.", []),
    ("Price was 1 299,00 € on the FR site but 1.349,00 € on the DE site?", []),
    ("The serial number is SN 5920848725714719 on the bottom plate", []),
    ("IMEI: 862502144084136", []),
    ("UPC 039146446958 - that's what the label says", []),
    ("Is it OK to use a 13A plug? The manual says 220-240V, 50/60Hz, 2000W.", []),
    ("Royal Mail tracking: AB734519204GB, says delivered to safe place", []),
    (
        "Hi! I'm Nia Roberts, order LG-431158. Can you deliver after 6pm? I'm at work till then. mob: 07700 900736",
        [("NAME", "Nia Roberts"), ("ORDER", "LG-431158"), ("PHONE", "07700 900736")],
    ),
    (
        "Customer: Hola, I'm Lucía Fernández\nAgent: Hi Lucía, how can I help?\nCustomer: my order LG-125663 never arrived, 3 weeks ago",
        [("NAME", "Lucía Fernández"), ("NAME", "Lucía"), ("ORDER", "LG-125663")],
    ),
    (
        "Hi Mike, sorry to hear that. I've passed it on to the courier.\n- Daniela",
        [("NAME", "Mike"), ("NAME", "Daniela")],
    ),
    # ------------------------------------------------------------------------------------------
    # Payment details again, mixed positives and look-alikes
    # ------------------------------------------------------------------------------------------
    (
        "Please refund to NL33 RABO 2993 3005 39. Thanks!\n- Femke Visser",
        [("IBAN", "NL33 RABO 2993 3005 39"), ("NAME", "Femke Visser")],
    ),
    (
        "Payment for LG-517360: card 4883-0366-2333-6995 was refused, trying 4774624944019192 instead",
        [("ORDER", "LG-517360"), ("CARD", "4883-0366-2333-6995"), ("CARD", "4774624944019192")],
    ),
    (
        "Yes the card is 4210 3518 0661 2185, exp 02/29. Please charge the $312.40 balance for LG-820047.\nThanks, Beatrix",
        [("CARD", "4210 3518 0661 2185"), ("ORDER", "LG-820047"), ("NAME", "Beatrix")],
    ),
    ("new card: 5541 5522 4065 7911", [("CARD", "5541 5522 4065 7911")]),
    (
        "Amex 370070337093608 for the business account please, billing address 45 Commerce Way, Suite 900, Denver, CO 80202",
        [("CARD", "370070337093608"), ("ADDRESS", "45 Commerce Way, Suite 900, Denver, CO 80202")],
    ),
    (
        "Discover ending 5313 - full number 6595 7683 2434 5313 - please update the subscription",
        [("CARD", "6595 7683 2434 5313")],
    ),
    (
        "Hi, this is Giulia Ricci, refund to IT86 X528 7338 5491 7761 7132 015 please (order LG-246019).",
        [("NAME", "Giulia Ricci"), ("IBAN", "IT86 X528 7338 5491 7761 7132 015"), ("ORDER", "LG-246019")],
    ),
    (
        "IBAN for the refund: ES37 0323 9456 5576 1788 2185\n\nRegards,\nCarlos Vidal",
        [("IBAN", "ES37 0323 9456 5576 1788 2185"), ("NAME", "Carlos Vidal")],
    ),
    (
        "Hi Pablo, good news: the missing table leg (part no. TL-0042) ships today with DPD, parcel no. 15501234567890.\nBest,\nInga",
        [("NAME", "Pablo"), ("NAME", "Inga")],
    ),
    (
        "Kindly send the VAT invoice to finance@example.co.uk and cc me at t.brennan@example.co.uk.\nThank you,\nTara Brennan",
        [("EMAIL", "t.brennan@example.co.uk"), ("NAME", "Tara Brennan")],
    ),
    (
        "Please note our bank details have changed: IBAN GB43 NWBK 6233 8808 7685 69.\nRegards,\nHolloway & Finch Ltd",
        [("IBAN", "GB43 NWBK 6233 8808 7685 69")],
    ),
    ("hi im locked out, pls reset. ip 198.51.100.52 (home), tried 5 times", [("IP", "198.51.100.52")]),
    ("the smart hub log says: gateway 10.1.1.1 timed out (x3)", [("IP", "10.1.1.1")]),
    (
        "The label printer's firmware is 2.0.1.9 and it sits at 192.168.50.20 on our network",
        [("IP", "192.168.50.20")],
    ),
    (
        "Hi Mr. Kowalczyk, your order LG-552190 will arrive Tuesday.\nRegards, Anja",
        [("NAME", "Kowalczyk"), ("ORDER", "LG-552190"), ("NAME", "Anja")],
    ),
    ("Got the parcel, all good. Thanks Esther!", [("NAME", "Esther")]),
    ("Sure - my SSN is 531-07-2296", [("SSN", "531-07-2296")]),
    (
        "Hi, this is Noor. The delivery address should be 3315 Mission Street, Apt 7, San Francisco, CA 94110, not the billing one.",
        [("NAME", "Noor"), ("ADDRESS", "3315 Mission Street, Apt 7, San Francisco, CA 94110")],
    ),
    (
        "Phone (925) 555-0111 / email n.alsayed@example.com / order LG-887203",
        [("PHONE", "(925) 555-0111"), ("EMAIL", "n.alsayed@example.com"), ("ORDER", "LG-887203")],
    ),
    ("Is the 3-pack (SKU HM-5512) cheaper than buying 3 singles at €14,99?", []),
    ("Hey Larkspur Goods, loving the new autumn range!", []),
    (
        "Dear Mrs. Holm,\n\nYour order LG-447391 was delivered on 02.06.2025 at 14:12 and signed for.\n\nKind regards,\nRuth",
        [("NAME", "Holm"), ("ORDER", "LG-447391"), ("NAME", "Ruth")],
    ),
    (
        "Hey, Finn here. Paid by bank transfer from DE08 0856 4682 0391 9425 99, amount €64,90, reference LG-339105.",
        [("NAME", "Finn"), ("IBAN", "DE08 0856 4682 0391 9425 99"), ("ORDER", "LG-339105")],
    ),
    (
        "Shipping to: 1017 Juniper Street NE, Atlanta, GA 30309. Contact number 404-555-0138.",
        [("ADDRESS", "1017 Juniper Street NE, Atlanta, GA 30309"), ("PHONE", "404-555-0138")],
    ),
    # ------------------------------------------------------------------------------------------
    # More links, SSNs, IPs and addresses
    # ------------------------------------------------------------------------------------------
    (
        "Here's my wishlist link if you want to see what I mean: https://www.larkspurgoods.com/wishlist?user=ahk1990&share=1",
        [("URL", "https://www.larkspurgoods.com/wishlist?user=ahk1990&share=1")],
    ),
    (
        "The invite link https://www.larkspurgoods.com/referral?ref_id=RX77Q2&email=lmarchetti%40example.it gives an error",
        [("URL", "https://www.larkspurgoods.com/referral?ref_id=RX77Q2&email=lmarchetti%40example.it")],
    ),
    (
        "Unsubscribe: https://news.larkspurgoods.com/u?id=00Qx7Yt3&hash=c81e728d9d4c2f63",
        [("URL", "https://news.larkspurgoods.com/u?id=00Qx7Yt3&hash=c81e728d9d4c2f63")],
    ),
    (
        "the payment page URL was https://pay.example.net/checkout?session_token=cs_live_a1B2c3D4e5F6&customer_id=cus_88213 and it timed out",
        [("URL", "https://pay.example.net/checkout?session_token=cs_live_a1B2c3D4e5F6&customer_id=cus_88213")],
    ),
    (
        "Track your return here: https://www.larkspurgoods.com/returns/status?rma=R-22091&email=p.ng%40example.com#step2",
        [("URL", "https://www.larkspurgoods.com/returns/status?rma=R-22091&email=p.ng%40example.com#step2")],
    ),
    (
        "I got a weird email with a link http://larkspur-goods-refunds.example.com/claim?user=9921&token=zz81k - is this phishing??",
        [("URL", "http://larkspur-goods-refunds.example.com/claim?user=9921&token=zz81k")],
    ),
    ("Returns policy is at https://www.larkspurgoods.com/help#returns right?", []),
    ("https://www.larkspurgoods.com/search?q=velvet+armchair&sort=price_asc shows nothing under $500", []),
    (
        "For the credit application: SSN 219-64-3380, DOB 11/02/1979, annual income $64,000.",
        [("SSN", "219-64-3380")],
    ),
    ("social security number: 633-18-2047", [("SSN", "633-18-2047")]),
    (
        "My SSN 402-55-8316 was typed wrong on the form, it shows 402-55-8361 - please fix before the credit check",
        [("SSN", "402-55-8316"), ("SSN", "402-55-8361")],
    ),
    ("SSN#: 584-21-0937", [("SSN", "584-21-0937")]),
    ("ssn 331208754 (no dashes sorry)", [("SSN", "331208754")]),
    (
        "VPN exit is 198.51.100.200, that's why it says I'm in Amsterdam. I'm actually in Bristol.",
        [("IP", "198.51.100.200")],
    ),
    (
        "my home IP changed from 203.0.113.5 to 203.0.113.61 overnight and now the account is locked",
        [("IP", "203.0.113.5"), ("IP", "203.0.113.61")],
    ),
    ("IPv6 if you need it: 2001:db8:3c4d:15::1a2f", [("IP", "2001:db8:3c4d:15::1a2f")]),
    (
        "Please send the replacement to my parents: 88 Willow Brook Drive, Naperville, IL 60540. They'll be home all week.",
        [("ADDRESS", "88 Willow Brook Drive, Naperville, IL 60540")],
    ),
    (
        "Return from: 19 Thornfield Road, Apt 2, Buffalo, NY 14216",
        [("ADDRESS", "19 Thornfield Road, Apt 2, Buffalo, NY 14216")],
    ),
    (
        "Address:\n16 Rosebank Lane\nFlat 9\nGlasgow G12 8QQ\n\nPhone: 0141 496 0613",
        [("ADDRESS", "16 Rosebank Lane\nFlat 9\nGlasgow G12 8QQ"), ("PHONE", "0141 496 0613")],
    ),
    (
        "hiya, can you send the receipt to my partner too? his email is cj.wren@example.net\ncheers, Orla",
        [("EMAIL", "cj.wren@example.net"), ("NAME", "Orla")],
    ),
]

# ----------------------------------------------------------------------------------------------
# Slightly beyond the declared scope: labelled as a careful human would, scored apart.
# ----------------------------------------------------------------------------------------------
OUT_OF_SCOPE_FRESH: list[Item] = [
    # names without a declared trigger, or after a trigger in lower case / another language
    ("hey this is mike, order LG-380029, the delivery guy was rude", [("NAME", "mike"), ("ORDER", "LG-380029")]),
    ("i'm tanvi, my order LG-205581 is late", [("NAME", "tanvi"), ("ORDER", "LG-205581")]),
    ("hi priya, thanks, that worked!", [("NAME", "priya")]),
    (
        "My sister Laura picked up the parcel for me, is that ok? Order LG-631177",
        [("NAME", "Laura"), ("ORDER", "LG-631177")],
    ),
    ("Please leave it with my neighbour Mrs. Patterson at number 19 if I'm out.", [("NAME", "Patterson")]),
    ("The desk is for our office, ask for Duncan at reception when you deliver.", [("NAME", "Duncan")]),
    ("Thank you so much!!! Lily :)", [("NAME", "Lily")]),
    ("My husband Tomás assembled it in 20 minutes, great instructions.", [("NAME", "Tomás")]),
    (
        "Bonjour, la table est arrivée abîmée.\n\nCordialement,\nSylvie Marchand",
        [("NAME", "Sylvie Marchand")],
    ),
    (
        "Die Lampe funktioniert nicht, Bestellung LG-772016.\n\nMit freundlichen Grüßen\nJürgen Schäfer",
        [("ORDER", "LG-772016"), ("NAME", "Jürgen Schäfer")],
    ),
    ("Kan ik nog ruilen? Groetjes, Femke", [("NAME", "Femke")]),
    (
        "PLEASE CALL ME ABOUT MY SOFA DELIVERY ON 0141 496 0288.\nREGARDS,\nDEREK HOLT",
        [("PHONE", "0141 496 0288"), ("NAME", "DEREK HOLT")],
    ),
    ("Je m'appelle Hélène Roux et j'attends toujours mon remboursement.", [("NAME", "Hélène Roux")]),
    (
        "From: Dominic Reyes <dreyes@example.com>\nSubject: missing screws\n\nHi, the screw pack is missing from LG-611830.",
        [("NAME", "Dominic Reyes"), ("EMAIL", "dreyes@example.com"), ("ORDER", "LG-611830")],
    ),
    ("Please send the invoice c/o Marianne Leclerc, she handles our accounts.", [("NAME", "Marianne Leclerc")]),
    ("Signed, Paolo Bianchi (very unhappy customer)", [("NAME", "Paolo Bianchi")]),
    # obfuscated e-mails
    ("you can email me on martina dot keller at example dot com", [("EMAIL", "martina dot keller at example dot com")]),
    (
        "my email is r.okafor [at] example [dot] org, not the one on file",
        [("EMAIL", "r.okafor [at] example [dot] org")],
    ),
    ("Kontakt: hkeller(at)example.de", [("EMAIL", "hkeller(at)example.de")]),
    # phones in formats outside the declared list
    ("call me 312 555 0166 after lunch", [("PHONE", "312 555 0166")]),
    ("my cell is +1 512 555 0157, text is fine", [("PHONE", "+1 512 555 0157")]),
    ("06 39 98 73 40 c'est mon portable, merci de m'appeler", [("PHONE", "06 39 98 73 40")]),
    ("mobile 07700900442 - can the driver ring before arriving?", [("PHONE", "07700900442")]),
    ("my number is 6175550188", [("PHONE", "6175550188")]),
    (
        "sure, my number is oh seven seven double oh, nine double oh, four five one",
        [("PHONE", "oh seven seven double oh, nine double oh, four five one")],
    ),
    # addresses without a house number + street suffix, or in other conventions
    ("Lieferadresse: Hauptstraße 12, 10115 Berlin", [("ADDRESS", "Hauptstraße 12, 10115 Berlin")]),
    ("livraison au 14 rue des Lilas, 69003 Lyon svp", [("ADDRESS", "14 rue des Lilas, 69003 Lyon")]),
    ("I live at 22 Broadway, New York, NY 10004, 5th floor", [("ADDRESS", "22 Broadway, New York, NY 10004")]),
    ("Mail the cheque to PO Box 4412, Austin, TX 78765", [("ADDRESS", "PO Box 4412, Austin, TX 78765")]),
    ("Deliver to Flat 3, Kingsway House, Leeds LS1 4AB please", [("ADDRESS", "Flat 3, Kingsway House, Leeds LS1 4AB")]),
    (
        "HI MY NAME IS BEATRIZ SOUZA AND I NEED TO CHANGE MY DELIVERY ADDRESS TO 38 OCEAN DRIVE, MIAMI BEACH, FL 33139",
        [("NAME", "BEATRIZ SOUZA"), ("ADDRESS", "38 OCEAN DRIVE, MIAMI BEACH, FL 33139")],
    ),
    # order numbers typed without the store's exact format
    ("order LG 550218 (sorry no dash)", [("ORDER", "LG 550218")]),
    ("order LG-55012 - I think I'm missing a digit", [("ORDER", "LG-55012")]),
    ("ordernr LG550219 still not delivered", [("ORDER", "LG550219")]),
    # numbers written in unusual groupings or spelled out
    ("card 44884767-62607302, please charge the deposit", [("CARD", "44884767-62607302")]),
    ("IBAN DE75 222693171626005662 (sorry, copy-paste)", [("IBAN", "DE75 222693171626005662")]),
    ("iban gb89midl50532677845285", [("IBAN", "gb89midl50532677845285")]),
    ("SSN 219 64 3380 for the financing form", [("SSN", "219 64 3380")]),
    ("the login alert said 203.0.113[.]9 - not me", [("IP", "203.0.113[.]9")]),
    # URLs without a scheme, or tracking links
    (
        "link: larkspurgoods.com/account/verify?token=ab12cd34ef56 doesn't open",
        [("URL", "larkspurgoods.com/account/verify?token=ab12cd34ef56")],
    ),
    (
        "Your tracking: https://www.ups.com/track?tracknum=1Z4F83W20391861154&loc=en_GB",
        [("URL", "https://www.ups.com/track?tracknum=1Z4F83W20391861154&loc=en_GB")],
    ),
]
