"""PII anonymizer on a held-out, hand-written corpus: precision / recall per type, misses, false positives.

    python benchmarks/pii_heldout.py                  # the first corpus (below)
    python benchmarks/pii_heldout.py --corpus fresh   # a later one, written blind (pii_corpus_fresh.py)

`benchmarks/pii_benchmark.py` scores the recognizers on the templates they were tuned on.
This corpus was written independently, before reading the recognizer code or those templates,
from the scope the module docstring of `chatforge/data/pii.py` declares: realistic support
messages (terse, rambling, lower case, typos, signatures, forwarded mail, chat shorthand,
UK / German / French formats) with every in-scope identifier labelled, and many look-alikes
that must stay untouched (prices, dates, times, quantities, SKUs, versions, tracking numbers,
ZIP codes alone, product and company names, Luhn-failing numbers ...).

Scoring: a detection is correct when a ground-truth span of the same type overlaps it; a
ground-truth span is found when a detection of its type overlaps it. The exact-boundary rate
(found spans whose detection has exactly the truth's start and end) is reported apart. Ground
truth is written as (type, value); every whole-word occurrence of the value in the text is a
truth span, because the anonymizer is declared to replace every copy of a value it found.

OUT_OF_SCOPE holds messages slightly beyond the declared scope (US phones with spaces, names
without a trigger, German street addresses, order-number typos ...); they are scored apart
and not counted in the main figures. Results go to benchmarks/results/pii_heldout.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from chatforge.data.pii import TYPES, Anonymizer, PIIConfig

RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(Path(__file__).parent))  # the fresh corpus module lives beside this script

Item = tuple[str, list[tuple[str, str]]]

# ----------------------------------------------------------------------------------------------
# In scope. Every person name here has at least one occurrence after a declared trigger
# (greeting, sign-off, "my name is", "I'm", "this is", "X here", "Name:", "- X" at the end);
# other copies of it are labelled too. Addresses carry a house number and a street suffix.
# ----------------------------------------------------------------------------------------------

ORDERS_AND_SHIPPING: list[Item] = [
    ("where is my order LG-482913?? its been 9 days", [("ORDER", "LG-482913")]),
    ("hi, order #LG-204817 arrived with a cracked lid. can i get a replacement", [("ORDER", "#LG-204817")]),
    ("lg-550219 still says processing. ordered on 06/02", [("ORDER", "lg-550219")]),
    ("Ordered 3 of the EL-1001 desk lamps (order LG-771043) but only 2 came.", [("ORDER", "LG-771043")]),
    ("Tracking 1Z999AA10123456784 hasn't moved since Tuesday. Order is LG-300912.", [("ORDER", "LG-300912")]),
    ("Can you combine LG-118273 and LG-118274 into one shipment? Same address.",
     [("ORDER", "LG-118273"), ("ORDER", "LG-118274")]),
    ("I was charged $1,299.99 twice for LG-640021, see attached screenshot", [("ORDER", "LG-640021")]),
    ("order number: LG-902215\nitem: Aurora Desk Lamp (sage)\nqty: 2\nissue: wrong colour", [("ORDER", "LG-902215")]),
    ("The return label for LG-415570 expires 2024-06-30, can you extend it?", [("ORDER", "LG-415570")]),
    ("Hi there, my order LG-388104 was supposed to arrive by June 14th. Now it says June 21. Not great.",
     [("ORDER", "LG-388104")]),
    ("thx for the refund on LG-227390, got it today", [("ORDER", "LG-227390")]),
    ("Re: LG-519926 — the replacement kettle (KT-2200) leaks too. Sigh.", [("ORDER", "LG-519926")]),
    ("Is 20% off still valid? I placed LG-730048 at 11:58pm on the last day of the sale", [("ORDER", "LG-730048")]),
    ("ordr LG-604417 pls cancel asap, bought by mistake", [("ORDER", "LG-604417")]),
    ("FedEx tracking 7489 2031 8850 shows delivered but nothing here. Order LG-881256.", [("ORDER", "LG-881256")]),
    ("USPS says 9400 1118 9922 3344 5566 77 has been in transit since 5/28", []),
    ("DHL shipment JD014600003828934567 stuck in customs at the Leipzig hub", []),
    ("Royal Mail ref AB123456789GB, posted 3 June, 2nd class", []),
    ("SKU WD-4410-BLK is out of stock again? I need 4 units by Friday", []),
    ('Hi team, the 65" TV stand (model TS-6500) arrived missing bolts M6x40. Parts list says 8, I have 6.', []),
    ("hey\nu there?\norder LG-310007\nwrong size\nneed XL not L\nthx", [("ORDER", "LG-310007")]),
    ("Order LG-205566: 2 x Oslo cushion cover @ £18.00, 1 x throw @ £34.50. Only the throw arrived.",
     [("ORDER", "LG-205566")]),
    ("my order (LG-660192) and my mum's order (LG-660193) got swapped lol",
     [("ORDER", "LG-660192"), ("ORDER", "LG-660193")]),
    ("Status for LG-774120 says 'label created' since 06/03/2024. Is it actually shipped?", [("ORDER", "LG-774120")]),
    ("can i still add a second chair to LG-128844 or is it too late", [("ORDER", "LG-128844")]),
    ("Delivery window was 8am-12pm, driver came at 4:15pm. Order LG-339021.", [("ORDER", "LG-339021")]),
    ("I need 250 pcs of the 12oz mugs (SKU MG-1200-WHT) for an event on 9/14. Do you do trade pricing?", []),
    ("Order total was $1,049.50 incl. $49.50 shipping, but the site now shows $999. Price match?", []),
    ("The box says 120-240V 50/60Hz but the plug is EU. Ordered from the US site.", []),
    ("ORDER LG-557731 - WRONG ITEM - PLEASE FIX", [("ORDER", "LG-557731")]),
    ("Return for LG-901377 dropped at the post office, receipt 0412-0003-118827", [("ORDER", "LG-901377")]),
    ("parcel for LG-242016 was left in the rain, box is soaked. photos attached", [("ORDER", "LG-242016")]),
    ("Case number 00481233 — you asked me to reply with the order, it's LG-350982", [("ORDER", "LG-350982")]),
    ("Invoice INV-2024-00412 doesn't match order LG-716605, the VAT is off by £3.20", [("ORDER", "LG-716605")]),
    ("The rug is 160 x 230 cm but I ordered 200 x 300. Order LG-408851", [("ORDER", "LG-408851")]),
    ("ticket #48213 was closed but the problem isn't fixed", []),
    ("Ordered LG-633197 on Black Friday, still not here. 3 weeks!!", [("ORDER", "LG-633197")]),
    ("PO 4500123987 for 40 desks — please confirm lead time", []),
    ("RMA 88123-B approved? I shipped it back Monday", []),
    ("Got 3 boxes for LG-519204, expected 4. Box 2 of 4 missing.", [("ORDER", "LG-519204")]),
    ("is LG-847720 eligible for the 15% loyalty discount? I've been a member since 2016", [("ORDER", "LG-847720")]),
    ("Hi! Orders LG-120044, LG-120045 and LG-120046 all need the same address change.",
     [("ORDER", "LG-120044"), ("ORDER", "LG-120045"), ("ORDER", "LG-120046")]),
    ("The duvet (King, 10.5 tog) from LG-291178 smells of chemicals", [("ORDER", "LG-291178")]),
    ("order #LG-455018 — refund still pending after 14 days", [("ORDER", "#LG-455018")]),
    ("I paid £12.99 for next-day and it came in 4 days. LG-372260", [("ORDER", "LG-372260")]),
    ("the tracking link for LG-903318 goes to a 404 page", [("ORDER", "LG-903318")]),
    ("does the 2-year warranty on the KT-2200 cover limescale damage?", []),
    ("Can I swap size M for L? Order lg-611287", [("ORDER", "lg-611287")]),
    ("Order: LG-185530 / LG-185531", [("ORDER", "LG-185530"), ("ORDER", "LG-185531")]),
    ("Heads up: ordered 1,200 lumens bulbs, received 800 lumens ones. LG-267749", [("ORDER", "LG-267749")]),
]

CONTACT_DETAILS: list[Item] = [
    ("hi my email is jenna.moreau88@gmail.com and i never got the confirmation for LG-310558",
     [("EMAIL", "jenna.moreau88@gmail.com"), ("ORDER", "LG-310558")]),
    ("Please update the email on my account to d.okafor@outlook.com. The old one (dokafor@hotmail.co.uk) is closed.",
     [("EMAIL", "d.okafor@outlook.com"), ("EMAIL", "dokafor@hotmail.co.uk")]),
    ("You can reach me at JSMITH1972@YAHOO.COM anytime", [("EMAIL", "JSMITH1972@YAHOO.COM")]),
    ("email: priya_raman+larkspur@proton.me\norder: LG-447201",
     [("EMAIL", "priya_raman+larkspur@proton.me"), ("ORDER", "LG-447201")]),
    ("I wrote to support@larkspurgoods.com twice last week and heard nothing back.", []),
    ("send the receipt to my work address instead: k.lindqvist@nordhavn-design.se (not the gmail one)",
     [("EMAIL", "k.lindqvist@nordhavn-design.se")]),
    ("Can u resend the invoice to mike.t@comcast.net? Spam folder ate it", [("EMAIL", "mike.t@comcast.net")]),
    ("My wife's email is on the account, hannah.becker@web.de — can you add mine too? lukas.becker@gmx.de",
     [("EMAIL", "hannah.becker@web.de"), ("EMAIL", "lukas.becker@gmx.de")]),
    ("The confirmation went to info@larkspurgoods.com instead of me?? weird", []),
    ("they told me to contact sales@larkspurgoods.com for bulk orders over 50 units", []),
    ("Reply-To: a.nwosu@icloud.com\n\nPlease use this address for all replies about LG-556012.",
     [("EMAIL", "a.nwosu@icloud.com"), ("ORDER", "LG-556012")]),
    ("i dont have access to olivia.grant@btinternet.com anymore, how do i change my login",
     [("EMAIL", "olivia.grant@btinternet.com")]),
    ("Account email is r.fernandes@sapo.pt but I order from the UK site", [("EMAIL", "r.fernandes@sapo.pt")]),
    ("Please call me on 07700 900123 after 6pm", [("PHONE", "07700 900123")]),
    ("my number is (312) 555-0147, text is fine too", [("PHONE", "(312) 555-0147")]),
    ("Mobile: +44 7700 900456", [("PHONE", "+44 7700 900456")]),
    ("you can reach me at 312.555.0199 between 9-5 CST", [("PHONE", "312.555.0199")]),
    ("Tel. +49 30 5550 1234 (Büro), mobil +49 151 23456789",
     [("PHONE", "+49 30 5550 1234"), ("PHONE", "+49 151 23456789")]),
    ("Rufen Sie mich bitte unter 030 5550 1234 an, ich bin ab 14 Uhr zu Hause.", [("PHONE", "030 5550 1234")]),
    ("my cell is 646-201-7734 if the driver needs directions", [("PHONE", "646-201-7734")]),
    ("Call +1 415-867-2290 and ask for me, I'm usually at my desk", [("PHONE", "+1 415-867-2290")]),
    ("le livreur peut m'appeler au +33 6 45 21 87 09 svp", [("PHONE", "+33 6 45 21 87 09")]),
    ("phone: 0161 496 0321\nemail: bryony.hale@gmail.com",
     [("PHONE", "0161 496 0321"), ("EMAIL", "bryony.hale@gmail.com")]),
    ("Home 020 7946 0958, mobile 07911 123456", [("PHONE", "020 7946 0958"), ("PHONE", "07911 123456")]),
    ("Can the driver ring 0176 42318890 on arrival? The buzzer is broken.", [("PHONE", "0176 42318890")]),
    ("It's been 2-3 weeks. I called at 10:45 and waited 38 minutes on hold!!", []),
    ("The invoice total was €1.249,00 incl. 19% MwSt, paid on 12.03.2024", []),
    ("PHONE: +1 (206) 555-0188", [("PHONE", "+1 (206) 555-0188")]),
    ("our office line is +44 20 7946 0321 ext. 214", [("PHONE", "+44 20 7946 0321")]),
    ("mon portable c'est le 06 12 34 56 78, merci de me rappeler", [("PHONE", "06 12 34 56 78")]),
    ("best number to reach me: 773-555-0164 (after 5 pm central)", [("PHONE", "773-555-0164")]),
    ("new phone number 07700 900871 pls update my account", [("PHONE", "07700 900871")]),
    ("Bitte melden Sie sich unter +49 89 1234 5678, danke.", [("PHONE", "+49 89 1234 5678")]),
    ("phone (617) 555-0123 / email tmaguire@bu.edu",
     [("PHONE", "(617) 555-0123"), ("EMAIL", "tmaguire@bu.edu")]),
    ("Opening hours 9:00-17:30 Mon-Fri, Sat 10:00-16:00 — is that for the Leeds store?", []),
    ("I tried calling 01 42 68 53 00 from France but it didn't connect, please call me back on +33 1 42 68 53 00",
     [("PHONE", "01 42 68 53 00"), ("PHONE", "+33 1 42 68 53 00")]),
    ("driver can text 512.555.0110 when he's 10 min away", [("PHONE", "512.555.0110")]),
    ("Emails to noemi.ferraro@libero.it keep bouncing, can you check the spelling on file?",
     [("EMAIL", "noemi.ferraro@libero.it")]),
    ("change my email from old_gamer_99@aol.com to chris.doyle.dev@fastmail.com please",
     [("EMAIL", "old_gamer_99@aol.com"), ("EMAIL", "chris.doyle.dev@fastmail.com")]),
    ("The order confirmation says it went to ahmed.k@gmial.com — typo, it should be gmail. Can you fix it?",
     [("EMAIL", "ahmed.k@gmial.com")]),
    ("contact: 0113 496 0777 (office hours only)", [("PHONE", "0113 496 0777")]),
    ("Bitte an lena.hoffmann@t-online.de schicken, nicht an die alte Adresse.",
     [("EMAIL", "lena.hoffmann@t-online.de")]),
    ("My partner's mobile is +44 7911 654321, he'll be home Thursday", [("PHONE", "+44 7911 654321")]),
    ("for delivery questions, 303-555-0181 works best", [("PHONE", "303-555-0181")]),
    ("Wrong number on the order, should be (404) 555-0139 not (404) 555-0193",
     [("PHONE", "(404) 555-0139"), ("PHONE", "(404) 555-0193")]),
    ("I'm on holiday until 12/07 — urgent stuff to +33 6 71 90 22 48 please", [("PHONE", "+33 6 71 90 22 48")]),
    ("email me the label at wkim@protonmail.com, I don't have a printer at home", [("EMAIL", "wkim@protonmail.com")]),
    ("Kundennummer 448812, Telefon 040 5550 7788", [("PHONE", "040 5550 7788")]),
    ("can someone call me?? 415-555-0172", [("PHONE", "415-555-0172")]),
    ("Call me at 312-555-0147 x204, that's my desk line", [("PHONE", "312-555-0147")]),
    ("Mobil: 0170 1234567, bitte vor 18 Uhr", [("PHONE", "0170 1234567")]),
    ("Email on file: S.Gallagher@Hotmail.co.uk (capitals don't matter I hope)",
     [("EMAIL", "S.Gallagher@Hotmail.co.uk")]),
]

PAYMENTS: list[Item] = [
    ("I tried paying with 4532 0151 1283 0366 and it got declined 3 times", [("CARD", "4532 0151 1283 0366")]),
    ("card no 4012-8888-8888-1881 exp 09/27 — please charge this one instead", [("CARD", "4012-8888-8888-1881")]),
    ("amex 3782 822463 10005, billing zip 60614", [("CARD", "3782 822463 10005")]),
    ("Can you refund to 5521430098744210? the old card was cancelled", [("CARD", "5521430098744210")]),
    ("The charge on my card ending in 4242 is wrong, it should be £45.99 not £54.99", []),
    ("Card: 6011 0009 9013 9424\nExp: 11/26\nCVV: 418", [("CARD", "6011 0009 9013 9424")]),
    ("Gift card GC-4417-2290-8831-0052 shows $0 balance but I never used it", []),
    ("my visa 4917612345678904 was charged twice for LG-290431",
     [("CARD", "4917612345678904"), ("ORDER", "LG-290431")]),
    ("Please use my Mastercard 2223 0031 2200 3222 for the balance.", [("CARD", "2223 0031 2200 3222")]),
    ("The reference on my bank statement is 4539 1488 0343 6468, what is that charge?", []),
    ("Card number 5424 1800 7766 9916 exp 03/28 cvv 731", [("CARD", "5424 1800 7766 9916")]),
    ("JCB 3566 0020 2036 0505 — does your site accept JCB?", [("CARD", "3566 0020 2036 0505")]),
    ("PayPal transaction 3900 2210 4478 1123 5 shows completed", []),
    ("For the refund: IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
    ("please refund to GB29NWBK60161331926819 (sort code 60-16-13)", [("IBAN", "GB29NWBK60161331926819")]),
    ("Bank details for the refund:\nIBAN: FR76 3000 6000 0112 3456 7890 189\nBIC: AGRIFRPP",
     [("IBAN", "FR76 3000 6000 0112 3456 7890 189")]),
    ("iban NL91 ABNA 0417 1643 00 thx", [("IBAN", "NL91 ABNA 0417 1643 00")]),
    ("Meine IBAN lautet DE44 5001 0517 5407 3249 31. Vielen Dank!", [("IBAN", "DE44 5001 0517 5407 3249 31")]),
    ("Can you send the money to ES91 2100 0418 4502 0005 1332? I'm back in Spain now",
     [("IBAN", "ES91 2100 0418 4502 0005 1332")]),
    ("IBAN: IT60 X054 2811 1010 0000 0123 456", [("IBAN", "IT60 X054 2811 1010 0000 0123 456")]),
    ("Wrong IBAN earlier, the correct one is BE68 5390 0754 7034", [("IBAN", "BE68 5390 0754 7034")]),
    ("the transfer bounced, I gave you DE89 3704 0044 0532 0131 00 which has a typo somewhere", []),
    ("AT61 1904 3002 3457 3201 is my Austrian account, refund there please", [("IBAN", "AT61 1904 3002 3457 3201")]),
    ("refund to IE29 AIBK 9311 5212 3456 78 pls", [("IBAN", "IE29 AIBK 9311 5212 3456 78")]),
    ("Swiss account for the refund: CH93 0076 2011 6238 5295 7", [("IBAN", "CH93 0076 2011 6238 5295 7")]),
    ("Business account GB82 WEST 1234 5698 7654 32, ref LG-884102",
     [("IBAN", "GB82 WEST 1234 5698 7654 32"), ("ORDER", "LG-884102")]),
    ("Numer konta: PL61 1090 1014 0000 0712 1981 2874", [("IBAN", "PL61 1090 1014 0000 0712 1981 2874")]),
    ("IBAN PT50 0002 0123 1234 5678 9015 4 (Caixa)", [("IBAN", "PT50 0002 0123 1234 5678 9015 4")]),
    ("refund to DE54200400600288194700 asap please, it's been a month", [("IBAN", "DE54200400600288194700")]),
    ("Mon IBAN : FR14 2004 1010 0505 0001 3M02 606", [("IBAN", "FR14 2004 1010 0505 0001 3M02 606")]),
    ("The financing form asks for my SSN, it's 512-38-4410. Is this secure?", [("SSN", "512-38-4410")]),
    ("SSN: 287-65-4321\nDOB: 04/17/1986\nfor the store card application", [("SSN", "287-65-4321")]),
    ("my social security number is 401-22-9876 — why do you need it for store credit??", [("SSN", "401-22-9876")]),
    ("SSN 623418802 (no dashes, sorry)", [("SSN", "623418802")]),
    ("ssn 318-44-2095 for the credit check", [("SSN", "318-44-2095")]),
    ("Social Security Number: 145-72-3306", [("SSN", "145-72-3306")]),
    ("Our zip is 60614-2231 and the apartment buzzer code is 4410", []),
    ("I entered my SSN (529-18-0034) on the financing page and it just spun forever", [("SSN", "529-18-0034")]),
    ("Why does the Affirm form need SSN 234-56-7812 AND my DOB? Seems like a lot.", [("SSN", "234-56-7812")]),
    ("i paid 3 installments of $216.33, statement dated 05-14-2024", []),
    ("IMEI 356938035643809 — the phone I traded in, has it been wiped?", []),
    ("The barcode on the box is 5901234123457, is that the right model?", []),
    ("refund of €89,90 should go back on the Visa ending 1881, not PayPal", []),
    ("Charged 2x £129.00 on 03/06 for the same order LG-552870", [("ORDER", "LG-552870")]),
    ("Card 4000 1234 5678 9010 was declined? I typed it from the letter, maybe wrong", []),
    ("charge it to 4111 1111 1111 1111 (company card)", [("CARD", "4111 1111 1111 1111")]),
    ("Amex: 371449635398431", [("CARD", "371449635398431")]),
    ("VAT number GB123456789, company reg 08123456 — please put these on the invoice", []),
    ("debit card 4000 0566 5566 5556 please, the credit one is maxed", [("CARD", "4000 0566 5566 5556")]),
    ("AMEX 378282246310005 exp 0526", [("CARD", "378282246310005")]),
    ("new card is 5105 1051 0510 5100, update my subscription pls", [("CARD", "5105 1051 0510 5100")]),
    ("I think you charged 4242 4242 4242 4242 instead of my other card?", [("CARD", "4242 4242 4242 4242")]),
    ("Discover 6011 1111 1111 1117 exp 01/29 — is Discover ok in the UK?", [("CARD", "6011 1111 1111 1117")]),
    ("I typed my SSN as 523-41-8890 on the credit form but it's 523-41-8809, can you fix it?",
     [("SSN", "523-41-8890"), ("SSN", "523-41-8809")]),
    ("SSN#: 610-33-2871", [("SSN", "610-33-2871")]),
    ("Social security no. 377-15-6624, DOB 1979", [("SSN", "377-15-6624")]),
    ("the last 4 of my SSN are 6624 if you need to verify me", []),
    ("My store card 5301 2547 8963 2146 shows a late fee I don't recognise", [("CARD", "5301 2547 8963 2146")]),
]

TECHNICAL: list[Item] = [
    ("The site blocked me, my IP is 73.162.88.214", [("IP", "73.162.88.214")]),
    ("Got a 'suspicious login' email from 185.220.101.47, that wasn't me!", [("IP", "185.220.101.47")]),
    ("the router admin page at 192.168.1.1 shows the smart plug connected but the app doesn't",
     [("IP", "192.168.1.1")]),
    ("Login attempt from 2001:db8:3c4d:15::1a2f:1a2b at 03:12 UTC", [("IP", "2001:db8:3c4d:15::1a2f:1a2b")]),
    ("Firmware 2.4.1.3 on the hub, app version 5.12.0", []),
    ("updated the plug to firmware 1.10.4.2 and now it won't pair", []),
    ("Windows 10.0.19045.4291, Chrome 125.0.6422.142, still can't check out", []),
    ("v3.2.0.1 of the desktop app crashes on launch", []),
    ("my public IPv6 is 2a02:c7f:8a3e:2100:5c1a:9d2e:44b1:7f03 if that helps with the geo-block",
     [("IP", "2a02:c7f:8a3e:2100:5c1a:9d2e:44b1:7f03")]),
    ("connected from 10.0.0.57 on the office wifi and it worked", [("IP", "10.0.0.57")]),
    ("the speaker shows IP 192.168.0.23 and MAC 3C:22:FB:9A:10:7E", [("IP", "192.168.0.23")]),
    ("the log says 14:02:55 for the error, and 14:03:10 for the retry", []),
    ("Error 0x80070005 when installing the printer driver 4.0.12", []),
    ("Timestamp in the error: 2024-06-10T14:32:05Z, request id 7f3a9c21", []),
    ("The hub is on 2.4 GHz, Bluetooth 5.3, the app is v4.12.0 on iOS 17.5.1", []),
    ("your checkout rejected my card from 81.2.69.142, is the UK blocked?", [("IP", "81.2.69.142")]),
    ("ping to 8.8.8.8 works, ping to the camera at 192.168.1.47 doesn't", [("IP", "8.8.8.8"), ("IP", "192.168.1.47")]),
    ("Screen is 16:9, 1920x1080, 60Hz", []),
    ("account locked after logins from 203.0.113.77 and 198.51.100.23 — neither is me",
     [("IP", "203.0.113.77"), ("IP", "198.51.100.23")]),
    ("camera firmware is version 3.10.2.1 according to the app", []),
    ("the thermostat keeps showing fe80::1ff:fe23:4567:890a as its address, is that normal?",
     [("IP", "fe80::1ff:fe23:4567:890a")]),
    ("Proxy at 172.16.4.20:8080 — do I need to whitelist your payment page?", [("IP", "172.16.4.20")]),
    ("the reset link https://larkspurgoods.com/account/reset?token=9f8c2a71e4b04d2f&email=rosa.alvarez%40gmail.com says expired",
     [("URL", "https://larkspurgoods.com/account/reset?token=9f8c2a71e4b04d2f&email=rosa.alvarez%40gmail.com")]),
    ("Tracking page: https://larkspurgoods.com/orders/track?id=LG-482917",
     [("URL", "https://larkspurgoods.com/orders/track?id=LG-482917")]),
    ("https://larkspurgoods.com/help/returns says 30 days but the chat said 14??", []),
    ("I clicked larkspurgoods.com/sale?utm_source=newsletter&utm_campaign=summer24 and the prices are different", []),
    ("see https://www.youtube.com/watch?v=dQw4w9WgXcQ for how the lamp flickers", []),
    ("unsubscribe link is broken: https://mail.larkspurgoods.com/unsubscribe?email=tom.baxter%40gmail.com&list=weekly",
     [("URL", "https://mail.larkspurgoods.com/unsubscribe?email=tom.baxter%40gmail.com&list=weekly")]),
    ("UPS link https://www.ups.com/track?tracknum=1Z999AA10123456784 says exception", []),
    ("Here's my wishlist: https://larkspurgoods.com/wishlist?user_id=558102",
     [("URL", "https://larkspurgoods.com/wishlist?user_id=558102")]),
    ("https://larkspurgoods.com/search?q=walnut+desk&page=2 shows nothing in stock", []),
    ("Invoice link: https://billing.larkspurgoods.com/invoice/view?id=88213&token=a7c1e09f",
     [("URL", "https://billing.larkspurgoods.com/invoice/view?id=88213&token=a7c1e09f")]),
    ("Verify link https://larkspurgoods.com/verify?email=jin.park@naver.com&code=552911 doesn't open",
     [("URL", "https://larkspurgoods.com/verify?email=jin.park@naver.com&code=552911")]),
    ("the product page https://larkspurgoods.com/products/aurora-desk-lamp?color=sage&size=large is 404", []),
    ("the password reset email link (https://larkspurgoods.com/reset-password?token=e3b0c44298fc1c14) is dead",
     [("URL", "https://larkspurgoods.com/reset-password?token=e3b0c44298fc1c14")]),
    ("www.larkspurgoods.com/account?customer_id=7731902 shows someone else's orders!!!",
     [("URL", "www.larkspurgoods.com/account?customer_id=7731902")]),
    ("Review link: https://larkspurgoods.com/review?order=LG-250019&email=pat.nolan%40outlook.com",
     [("URL", "https://larkspurgoods.com/review?order=LG-250019&email=pat.nolan%40outlook.com")]),
    ("the feedback email link https://larkspurgoods.com/feedback?customer=88120&token=Zx81Kq keeps timing out",
     [("URL", "https://larkspurgoods.com/feedback?customer=88120&token=Zx81Kq")]),
    ("verify page: https://larkspurgoods.com/account/verify?user=mkhan92&code=771203",
     [("URL", "https://larkspurgoods.com/account/verify?user=mkhan92&code=771203")]),
    ("gift link http://larkspurgoods.com/gift?recipient_email=lou.perez%40gmail.com shows the wrong name",
     [("URL", "http://larkspurgoods.com/gift?recipient_email=lou.perez%40gmail.com")]),
    ("Return label: https://larkspurgoods.com/returns/label?order_id=LG-902216&zip=60614 won't print",
     [("URL", "https://larkspurgoods.com/returns/label?order_id=LG-902216&zip=60614")]),
    ("our home connection is 2600:1700:5a40:8f0::1f and checkout says 'region not supported'",
     [("IP", "2600:1700:5a40:8f0::1f")]),
    ("app version 4.12.0 (build 881) on a Pixel 7, Android 14", []),
    ("your status page https://status.larkspurgoods.com/ shows all green but checkout fails", []),
    ("https://larkspurgoods.com/blog/how-to-care-for-linen?ref=homepage", []),
]

ADDRESSES: list[Item] = [
    ("Please ship to 1428 Elm Street, Springfield, IL 62704", [("ADDRESS", "1428 Elm Street, Springfield, IL 62704")]),
    ("new address: 77 Mount Pleasant Road, London N16 5RS", [("ADDRESS", "77 Mount Pleasant Road, London N16 5RS")]),
    ("I moved! It's 4500 N Lincoln Ave, Apt 3F, Chicago, IL 60625 now",
     [("ADDRESS", "4500 N Lincoln Ave, Apt 3F, Chicago, IL 60625")]),
    ("deliver to 12 Main St pls, use the side door", [("ADDRESS", "12 Main St")]),
    ("The store on Oxford Road was closed when I went to return it", []),
    ("I picked it up at the 5th Avenue store last Saturday", []),
    ("zip code 94110, does that qualify for free delivery?", []),
    ("Address: 2217 Lakeview Drive\nAustin, TX 78704", [("ADDRESS", "2217 Lakeview Drive\nAustin, TX 78704")]),
    ("Flat 2, 14 Gower Street, London WC1E 6BT — please don't leave it outside",
     [("ADDRESS", "Flat 2, 14 Gower Street, London WC1E 6BT")]),
    ("my billing address is 905 Harbor View Blvd, Suite 210, San Diego, CA 92101 but ship to work",
     [("ADDRESS", "905 Harbor View Blvd, Suite 210, San Diego, CA 92101")]),
    ("Leave it with the neighbour at 16 Kingsley Close if I'm out", [("ADDRESS", "16 Kingsley Close")]),
    ("Deliver to 38 Rosewood Crescent, Leeds LS8 2QB", [("ADDRESS", "38 Rosewood Crescent, Leeds LS8 2QB")]),
    ("We're at 300 Industrial Pkwy, Unit 12, Reno, NV 89502 — loading dock round the back",
     [("ADDRESS", "300 Industrial Pkwy, Unit 12, Reno, NV 89502")]),
    ("Address on file is 18 Willow Court but I'm at 243 Beacon Hill Lane now",
     [("ADDRESS", "18 Willow Court"), ("ADDRESS", "243 Beacon Hill Lane")]),
    ("we ordered 4 Park Avenue dining chairs and 1 table", []),
    ("Main Street location was out of stock, is the mall one any better?", []),
    ("I live just off Baker Street, is same-day delivery available?", []),
    ("Shipping: 610 Maple Way, Boulder, CO 80302", [("ADDRESS", "610 Maple Way, Boulder, CO 80302")]),
    ("Ship to 7 Hawthorn Place, Bristol BS6 6XY please, not my billing address",
     [("ADDRESS", "7 Hawthorn Place, Bristol BS6 6XY")]),
    ("3180 Sunset Terrace, Los Angeles, CA 90026 is the right one, the other is old",
     [("ADDRESS", "3180 Sunset Terrace, Los Angeles, CA 90026")]),
    ("the courier says 'address not found' but 56 Quarry Road, Bath BA2 4LE definitely exists!",
     [("ADDRESS", "56 Quarry Road, Bath BA2 4LE")]),
    ("Returns go to our warehouse, right? The label says Unit 7, Riverside Industrial Estate", []),
    ("it's the blue door, 9 Albert Street, not 9 Albert Square",
     [("ADDRESS", "9 Albert Street"), ("ADDRESS", "9 Albert Square")]),
    ("Apt 5C, 220 Riverside Drive, New York, NY 10025",
     [("ADDRESS", "Apt 5C, 220 Riverside Drive, New York, NY 10025")]),
    ("1175 Peachtree St NE, Atlanta, GA 30361 — front desk will sign",
     [("ADDRESS", "1175 Peachtree St NE, Atlanta, GA 30361")]),
    ("please update delivery to 88 Harrow Road, London W2 5DX, thanks!",
     [("ADDRESS", "88 Harrow Road, London W2 5DX")]),
    ("Is there a store near Route 66 or the I-90 exit 14?", []),
    ("My old address (15 Birch Avenue) still shows at checkout", [("ADDRESS", "15 Birch Avenue")]),
    ("Deliver Monday to 402 Oak Ridge Ct, Raleigh, NC 27615",
     [("ADDRESS", "402 Oak Ridge Ct, Raleigh, NC 27615")]),
    ("The parcel went to 23 Station Road instead of 32 Station Road. Can you get it back?",
     [("ADDRESS", "23 Station Road"), ("ADDRESS", "32 Station Road")]),
    ("The Manchester store on Deansgate said to contact you. I bought it there in 2022.", []),
    ("2 Harbour Way, Suite 400, Seattle, WA 98101 for invoices",
     [("ADDRESS", "2 Harbour Way, Suite 400, Seattle, WA 98101")]),
    ("our office moved to 1900 Lakeshore Boulevard, Toronto? no wait that's Canada, do you ship there",
     [("ADDRESS", "1900 Lakeshore Boulevard")]),
    ("Send the replacement to 67 Grange Lane, Sheffield S5 0DQ", [("ADDRESS", "67 Grange Lane, Sheffield S5 0DQ")]),
    ("Delivery address:\n145 Cedar Hollow Drive\nApt 12\nColumbus, OH 43215",
     [("ADDRESS", "145 Cedar Hollow Drive\nApt 12\nColumbus, OH 43215")]),
    ("The furniture is for our flat at 10 Downing Close, Oxford OX3 7AB",
     [("ADDRESS", "10 Downing Close, Oxford OX3 7AB")]),
    ("Our showroom is on Fifth Avenue, you can pick up there", []),
    ("ZIP 10001, apartment building, 6th floor, no elevator — can the 2-person delivery handle that?", []),
]

NAMES: list[Item] = [
    ("Hi, my name is Grace Silva and I ordered a rug last week (LG-208833).",
     [("NAME", "Grace Silva"), ("ORDER", "LG-208833")]),
    ("Hello, this is Marcus Oyelaran. Following up on my earlier email.", [("NAME", "Marcus Oyelaran")]),
    ("Dear Larkspur Goods team,\n\nThe chair arrived damaged.\n\nKind regards,\nEleanor Whitfield",
     [("NAME", "Eleanor Whitfield")]),
    ("Hi Maria, thanks for your patience. Your refund has been issued and should show in 5-7 business days.\n\n"
     "Best,\nDaniel\nLarkspur Goods Support",
     [("NAME", "Maria"), ("NAME", "Daniel")]),
    ("Name: Tomás Herrera\nOrder: LG-661904\nReason: wrong size", [("NAME", "Tomás Herrera"), ("ORDER", "LG-661904")]),
    ("Kevin here, the guy with the broken blender. Any update?", [("NAME", "Kevin")]),
    ("I'm Aisha, I placed an order yesterday and want to change the colour", [("NAME", "Aisha")]),
    ("thanks so much!! - Priya", [("NAME", "Priya")]),
    ("All sorted now. Thanks, Larkspur Goods!", []),
    ("Hi there, quick question about gift wrapping.", []),
    ("Hi team,\nCan someone call me back about the sofa delivery slot?\nThanks", []),
    ("I'm Sorry to chase again but LG-993012 is now 2 weeks late", [("ORDER", "LG-993012")]),
    ("Dear Sir or Madam,\n\nI am writing to complain about order LG-120577.\n\nYours faithfully,\nJ. Pemberton",
     [("ORDER", "LG-120577"), ("NAME", "J. Pemberton")]),
    ("Hey Sam, no worries, I'll wait for the courier.", [("NAME", "Sam")]),
    ("Good morning Fatima,\n\nYour replacement has shipped.\n\nRegards,\nOwen Pritchard\nCustomer Care",
     [("NAME", "Fatima"), ("NAME", "Owen Pritchard")]),
    ("hello my name is Nguyen Thi Lan, I want to return the vacuum", [("NAME", "Nguyen Thi Lan")]),
    ("This is Anne-Marie Dubois calling about LG-412288, please ring me back on 06 98 76 54 32",
     [("NAME", "Anne-Marie Dubois"), ("ORDER", "LG-412288"), ("PHONE", "06 98 76 54 32")]),
    ("Got the refund, all good.\n\nThanks, Sean O'Brien", [("NAME", "Sean O'Brien")]),
    ("That worked, the app shows the order now. Cheers,\nRhys", [("NAME", "Rhys")]),
    ("Please find attached the PO for 12 units of the Atlas Standing Desk.\n\nRegards,\nAccounts Payable\n"
     "Brightwave Media Ltd", []),
    ("Thanks, Monday works for the delivery.", []),
    ("ok pls send a new one\n\nSent from my iPhone", []),
    ("Product name: Aurora Desk Lamp\nColour: Sage Green\nQuantity: 2", []),
    ("Company name: Brightwave Media Ltd\nPlease invoice us for the 12 desks.", []),
    ("Dear Customer,\n\nYour order LG-705516 has been dispatched.\n\nThe Larkspur Goods Team",
     [("ORDER", "LG-705516")]),
    ("I'M NOT HAPPY. THIS IS THE THIRD TIME THE COURIER MISSED ME.", []),
    ("Hi Larkspur, do you ship to Northern Ireland?", []),
    ("Hello Support, the discount code SUMMER24 isn't working at checkout", []),
    ("This is Urgent - my card was charged but no order number came through", []),
    ("I'll wait for the courier then.\n\nThank you,\nDr. Ingrid Halvorsen", [("NAME", "Ingrid Halvorsen")]),
    ("Please quote for 30 chairs.\n\nBest regards,\nMei Lin Zhou\nProcurement Lead, Nordhavn Design",
     [("NAME", "Mei Lin Zhou")]),
    ("Hola! my name is José Ángel García and I live in Madrid, do you deliver there?",
     [("NAME", "José Ángel García")]),
    ("hi, Zoë here. the mirror came smashed, pics attached", [("NAME", "Zoë")]),
    ("Hi DeShawn, I've escalated this to our warehouse team in Columbus and they'll reply by Thursday. "
     "- Larkspur Goods Support", [("NAME", "DeShawn")]),
    ("My name is Siobhán Ní Bhriain and I'd like to update my delivery address", [("NAME", "Siobhán Ní Bhriain")]),
    ("Hi, I'm Tom from the Nordhavn Design office, we ordered 12 chairs.", [("NAME", "Tom")]),
    ("The cushions are lovely, thank you!\n\nWarm regards,\nElif Yıldız", [("NAME", "Elif Yıldız")]),
    ("Dear Mr Kowalczyk,\n\nThank you for contacting us about LG-338190.", [("NAME", "Kowalczyk"), ("ORDER", "LG-338190")]),
    ("Dear Ms. Adeyemi, we're sorry to hear the parcel was left in the rain.", [("NAME", "Adeyemi")]),
    ("Hello! Quick question: does the Oslo sofa come in grey?", []),
    ("Hi, Larkspur Goods support here. How can I help today?", []),
    ("Thanks, Will do that tonight.", []),
    ("Dear Valued Customer,\nWe have updated our returns policy.", []),
    ("Hi All,\nThe desks arrived, thanks for the quick turnaround.", []),
    ("Best,\nThe Larkspur Goods Team", []),
    ("Regards,\nCustomer Service", []),
    ("I'm Canadian so the US sizes confuse me, is a Queen the same as a UK double?", []),
    ("This is Ridiculous. Third email!", []),
    ("the driver left it in the rain. Thanks, UPS.", []),
    ("Thank you, Larkspur! Great service.", []),
    ("Morning team, any news on the backorder?", []),
    ("Thanks, Friday is fine for the collection.", []),
    ("Get Outlook for Android", []),
    ("Hi Jonas,\n\nthe replacement bulbs were sent today, tracking to follow.\n\nBR,\nAnya",
     [("NAME", "Jonas"), ("NAME", "Anya")]),
    ("Hello Olga, your return for LG-803319 has been received at our depot.",
     [("NAME", "Olga"), ("ORDER", "LG-803319")]),
    ("This is Bilal from the Leeds store, I'm forwarding a customer's request.", [("NAME", "Bilal")]),
    ("My name is Hannah Schmidt, Bestellung LG-774003 ist noch nicht angekommen.",
     [("NAME", "Hannah Schmidt"), ("ORDER", "LG-774003")]),
    ("Bonjour, je m'appelle Camille. I'm Camille Laurent, order LG-509871, the lamp doesn't work.",
     [("NAME", "Camille Laurent"), ("NAME", "Camille"), ("ORDER", "LG-509871")]),
    ("Hi Grace,\n\nWe've located the rug and it will be delivered tomorrow.\n\nThanks,\nLeo",
     [("NAME", "Grace"), ("NAME", "Leo")]),
    ("Dear Mrs. Okonkwo-Bello,\n\nPlease accept our apologies for the delay.", [("NAME", "Okonkwo-Bello")]),
    ("Hey Larkspur team, love the new catalogue!", []),
    ("Hi Chris, sorry I missed your call. Evenings work best. - Dana",
     [("NAME", "Chris"), ("NAME", "Dana")]),
    ("Thanks,\nMarta Nowak\nSent from my Galaxy", [("NAME", "Marta Nowak")]),
    ("Kind regards,\nRaj Patel", [("NAME", "Raj Patel")]),
    ("Name: Li Wei\nIssue: can't log in\nBrowser: Firefox 126", [("NAME", "Li Wei")]),
    ("Hi Dmitri, I've reset your password. Let us know if the new one works!\nBest, Aoife",
     [("NAME", "Dmitri"), ("NAME", "Aoife")]),
    ("Dear Larkspur Goods,\nI never received my order.\nYours sincerely,\nPatrick McAllister",
     [("NAME", "Patrick McAllister")]),
    ("hi im Becca, wanted to ask about the sale", [("NAME", "Becca")]),
    ("Thx, Jordan", [("NAME", "Jordan")]),
    ("Many thanks,\nKatarzyna", [("NAME", "Katarzyna")]),
    ("Hello, I'm Pedro Alves and I can't find the assembly video for the Atlas desk",
     [("NAME", "Pedro Alves")]),
    ("Sincerely,\nThe Returns Department", []),
    ("Dear Hiring Manager, wrong inbox sorry!", []),
    ("Hi Support Team, our account number is 448812", []),
    ("Hello from Portugal! Do you ship to Lisbon?", []),
    ("Thanks, Great service as always", []),
    ("Hi Mohammed,\nThanks for your order! It ships Monday.\nRegards, Ellie from Larkspur Goods",
     [("NAME", "Mohammed"), ("NAME", "Ellie")]),
    ("Greetings from Chicago! The lamp arrived fine.", []),
    ("Hi, Tuesday or Wednesday works for the engineer visit.", []),
    ("Thanks, Black Friday deals were great", []),
    ("Dear Team Larkspur,\nthe mugs are gorgeous!", []),
    ("Hi Keisha, hi Marcus — looping you both in on LG-618270.",
     [("NAME", "Keisha"), ("NAME", "Marcus"), ("ORDER", "LG-618270")]),
    ("Hey Larkspur Goods, where's my stuff", []),
    ("This is Yusuf Demir, customer since 2018, and I've never been treated like this.",
     [("NAME", "Yusuf Demir")]),
]

MIXED: list[Item] = [
    ("Hi there,\n\nI've been a customer since 2019 and this is the first time I've had to complain. I ordered the "
     "Atlas Standing Desk (LG-483920) on May 3rd for $649.00 and it arrived with a bent leg. I called your line "
     "twice and was told someone would ring me back on 07700 900871 but nobody did. I can send photos to whoever "
     "needs them, my email is harriet.cole@gmail.com.\n\nAlso the assembly manual says version 2.1 but the parts "
     "are labelled for v3?\n\nThanks,\nHarriet Cole",
     [("ORDER", "LG-483920"), ("PHONE", "07700 900871"), ("EMAIL", "harriet.cole@gmail.com"),
      ("NAME", "Harriet Cole")]),
    ("FYI see below, can you sort this out?\n\n-----Original Message-----\nFrom: Larkspur Goods "
     "<support@larkspurgoods.com>\nSent: Tuesday, June 4, 2024 8:12 AM\nTo: b.ashworth@ntlworld.com\nSubject: "
     "Your order LG-774512 has shipped\n\nHi Ben, your order is on its way! Track it at "
     "https://larkspurgoods.com/track?id=774512&email=b.ashworth%40ntlworld.com\n\n---\nThanks, Ben",
     [("EMAIL", "b.ashworth@ntlworld.com"), ("ORDER", "LG-774512"),
      ("URL", "https://larkspurgoods.com/track?id=774512&email=b.ashworth%40ntlworld.com"), ("NAME", "Ben")]),
    ("ok so i ordered the blue kettle like 2 weeks ago, order LG-205518, and it came today but its the GREEN one?? "
     "and the box was open. i need it for my moms birthday on the 14th. can someone pls call me 646-555-0192 or "
     "just send the right one to 83 Orchard Street, Apt 2R, New York, NY 10002. thx",
     [("ORDER", "LG-205518"), ("PHONE", "646-555-0192"), ("ADDRESS", "83 Orchard Street, Apt 2R, New York, NY 10002")]),
    ("Best regards,\n\nDr. Ingrid Halvorsen\nHead of Operations | Fjordline Clinics\nT: +44 20 7946 0112\n"
     "M: +44 7700 900334\nE: ingrid.halvorsen@fjordline.no\n123 Harley Street, London W1G 6BA",
     [("NAME", "Ingrid Halvorsen"), ("PHONE", "+44 20 7946 0112"), ("PHONE", "+44 7700 900334"),
      ("EMAIL", "ingrid.halvorsen@fjordline.no"), ("ADDRESS", "123 Harley Street, London W1G 6BA")]),
    ("Hi Tomasz,\n\nThanks for getting back to us. I can see order LG-530118 was returned to our depot on "
     "28/05/2024. I've issued a refund of £89.97 to the card ending 1881; please allow 3-5 working days.\n\n"
     "Kind regards,\nChloe\nLarkspur Goods Customer Care",
     [("NAME", "Tomasz"), ("ORDER", "LG-530118"), ("NAME", "Chloe")]),
    ("Name: Rebecca Thornton\nEmail: becky.thornton@yahoo.co.uk\nPhone: 07700 900562\nOrder: LG-640882\n"
     "Address: 29 Elmfield Road, Sheffield S10 1SN\nMessage: The lamp shade is cracked, would like a replacement "
     "please.",
     [("NAME", "Rebecca Thornton"), ("EMAIL", "becky.thornton@yahoo.co.uk"), ("PHONE", "07700 900562"),
      ("ORDER", "LG-640882"), ("ADDRESS", "29 Elmfield Road, Sheffield S10 1SN")]),
    ("Dear Larkspur Goods,\n\nI would like to request a refund for order LG-552301 (2x Linen Duvet Cover, King, "
     "$119.98). Please refund to my original payment method.\n\nSincerely,\nMargaret A. Whitaker\n"
     "1742 Briar Cliff Drive\nCharlotte, NC 28211",
     [("ORDER", "LG-552301"), ("NAME", "Margaret A. Whitaker"), ("ADDRESS", "1742 Briar Cliff Drive\nCharlotte, NC 28211")]),
    ("---------- Forwarded message ---------\nFrom: Carlos Mendes <carlos.mendes@gmail.com>\nDate: Mon, 3 Jun 2024 "
     "at 09:14\nSubject: Re: Order LG-530177\nTo: <support@larkspurgoods.com>\n\nStill waiting on this one. My "
     "phone is +44 7700 900218.\n\nRegards,\nCarlos Mendes",
     [("NAME", "Carlos Mendes"), ("EMAIL", "carlos.mendes@gmail.com"), ("ORDER", "LG-530177"),
      ("PHONE", "+44 7700 900218")]),
    ("hey its Dev again lol. Dev here I mean. order LG-119034 still not here, my # is 415-555-0166",
     [("NAME", "Dev"), ("ORDER", "LG-119034"), ("PHONE", "415-555-0166")]),
    ("Hello,\n\nMy name is Aleksandra Petrović. I ordered 2 bar stools (SKU BS-0750, €79,00 each) on 02.06.2024, "
     "order LG-672245. One stool has a wobbly leg. You can call me at +49 176 2233 4455 or write to "
     "a.petrovic@posteo.de.\n\nMit freundlichen Grüßen\nAleksandra Petrović",
     [("NAME", "Aleksandra Petrović"), ("ORDER", "LG-672245"), ("PHONE", "+49 176 2233 4455"),
      ("EMAIL", "a.petrovic@posteo.de")]),
    ("Hi Priya,\n\nYour IP 92.40.183.12 was flagged by our fraud filter, which is why order LG-403388 was held. "
     "I've released it now.\n\nThanks,\nGabriel\nLarkspur Goods Trust & Safety",
     [("NAME", "Priya"), ("IP", "92.40.183.12"), ("ORDER", "LG-403388"), ("NAME", "Gabriel")]),
    ("name: Alan Brooks\nphone (213) 555-0145\naddr 990 Vista Del Mar Drive, Los Angeles, CA 90036\n"
     "notes: wants a call before delivery\n- Kim",
     [("NAME", "Alan Brooks"), ("PHONE", "(213) 555-0145"), ("ADDRESS", "990 Vista Del Mar Drive, Los Angeles, CA 90036"), ("NAME", "Kim")]),
    ("Hello team, this is Nadia Rahman (nadia.rahman@hey.com). I was double charged: card 4532 0151 1283 0366, "
     "orders LG-225890 and LG-225891. Please refund one. Cheers, Nadia",
     [("NAME", "Nadia Rahman"), ("NAME", "Nadia"), ("EMAIL", "nadia.rahman@hey.com"),
      ("CARD", "4532 0151 1283 0366"), ("ORDER", "LG-225890"), ("ORDER", "LG-225891")]),
    ("I'm Oliver Grant, the account is olivia.grant@btinternet.com (my wife's), phone 07700 900654, order "
     "LG-883120. The 3-seater sofa (model OS-300, 210 cm) won't fit through our door at 14 Cavendish Road, "
     "Bristol BS6 7RJ. Can we swap for the 2-seater?",
     [("NAME", "Oliver Grant"), ("EMAIL", "olivia.grant@btinternet.com"), ("PHONE", "07700 900654"),
      ("ORDER", "LG-883120"), ("ADDRESS", "14 Cavendish Road, Bristol BS6 7RJ")]),
    ("On Tue, Jun 11, 2024 at 3:42 PM Larkspur Goods <support@larkspurgoods.com> wrote:\n> Hi Lucy, can you confirm "
     "your delivery address?\n\nYes it's 58 Kingfisher Drive, Swindon SN3 4EL. Thanks, Lucy",
     [("NAME", "Lucy"), ("ADDRESS", "58 Kingfisher Drive, Swindon SN3 4EL")]),
    ("Refund request\nOrder: LG-901566\nAmount: $86.40\nRefund to: IBAN GB69 BARC 2003 5344 5566 77\n"
     "Account email: samira.haddad@outlook.com\n\nThanks,\nSamira Haddad",
     [("ORDER", "LG-901566"), ("IBAN", "GB69 BARC 2003 5344 5566 77"), ("EMAIL", "samira.haddad@outlook.com"),
      ("NAME", "Samira Haddad")]),
    ("Agent: Hi, this is Noah from Larkspur Goods. How can I help?\nCustomer: hi Noah, order LG-472004 never came\n"
     "Agent: Sorry to hear that! Can you confirm the phone number on the order?\nCustomer: 312-555-0108",
     [("NAME", "Noah"), ("ORDER", "LG-472004"), ("PHONE", "312-555-0108")]),
    ("hi, Fern here 🌿 my plant stand (LG-338852) came with 3 legs instead of 4 lol. "
     "can u send the missing leg to 27 Ivy Lane, Norwich NR2 3HG? ty",
     [("NAME", "Fern"), ("ORDER", "LG-338852"), ("ADDRESS", "27 Ivy Lane, Norwich NR2 3HG")]),
    ("Dear Sir/Madam,\n\nRe: Order LG-610395 – damaged on arrival\n\nThe glass top of the coffee table (ref CT-880, "
     "£249.00) was shattered. I've kept the packaging. My contact number is 0131 496 0550.\n\nYours faithfully,\n"
     "Fiona MacLeod",
     [("ORDER", "LG-610395"), ("PHONE", "0131 496 0550"), ("NAME", "Fiona MacLeod")]),
    ("Bonjour,\n\nJe m'appelle Mathilde. Commande LG-207719, le colis n'est jamais arrivé. Mon numéro : "
     "06 23 45 67 89, mon adresse e-mail : mathilde.roux@orange.fr.\n\nThanks,\nMathilde Roux",
     [("NAME", "Mathilde Roux"), ("NAME", "Mathilde"), ("ORDER", "LG-207719"), ("PHONE", "06 23 45 67 89"),
      ("EMAIL", "mathilde.roux@orange.fr")]),
    ("Thanks for the quick reply! Yes, the address is 1520 Cherry Blossom Ln, Portland, OR 97214. "
     "Phone 971-555-0137.\n\n- Hiro",
     [("ADDRESS", "1520 Cherry Blossom Ln, Portland, OR 97214"), ("PHONE", "971-555-0137"), ("NAME", "Hiro")]),
    ("hi im locked out, last login was from 86.142.77.19 which is my home, and now it says new device. "
     "email is dan.whitmore@sky.com.\n- Dan",
     [("IP", "86.142.77.19"), ("EMAIL", "dan.whitmore@sky.com"), ("NAME", "Dan")]),
    ("Good afternoon Ms Lindqvist,\n\nThe invoice for PO 4500123988 (12 x Atlas desk, SEK 54 000) is attached. "
     "Payment to SE45 5000 0000 0583 9825 7466 please.\n\nBest regards,\nAnders",
     [("NAME", "Lindqvist"), ("IBAN", "SE45 5000 0000 0583 9825 7466"), ("NAME", "Anders")]),
    ("Please stop emailing old.account.2011@yahoo.com, I've asked 3 times. Use tanya.reid@icloud.com. "
     "- Tanya",
     [("EMAIL", "old.account.2011@yahoo.com"), ("EMAIL", "tanya.reid@icloud.com"), ("NAME", "Tanya")]),
    ("Hi Larkspur Goods,\nCan I pay by bank transfer? My IBAN is NL20 INGB 0001 2345 67 if you need to refund.\n"
     "Regards,\nSanne de Vries",
     [("IBAN", "NL20 INGB 0001 2345 67"), ("NAME", "Sanne de Vries")]),
    ("From the chat widget:\nvisitor IP: 24.114.60.201\nvisitor email: kcarter88@gmail.com\nmessage: is the "
     "sale on the EL-1001 lamp ending tonight?",
     [("IP", "24.114.60.201"), ("EMAIL", "kcarter88@gmail.com")]),
    ("My name is Omar Farouk. My SSN is 468-20-1937, and I'm applying for the Larkspur store card. "
     "Address 2790 Westfield Ave, Apt 7, Houston, TX 77002.",
     [("NAME", "Omar Farouk"), ("SSN", "468-20-1937"), ("ADDRESS", "2790 Westfield Ave, Apt 7, Houston, TX 77002")]),
    ("Hi, Ruth here. The card I used was 5521 4300 9874 4210, exp 10/25, and I got charged in USD instead of GBP.",
     [("NAME", "Ruth"), ("CARD", "5521 4300 9874 4210")]),
    ("Hello Ahmed,\n\nWe've updated the email on your account to ahmed.k@gmail.com and resent the confirmation for "
     "LG-227815.\n\nKind regards,\nSophie",
     [("NAME", "Ahmed"), ("EMAIL", "ahmed.k@gmail.com"), ("ORDER", "LG-227815"), ("NAME", "Sophie")]),
    ("Order LG-750044 shipped to the wrong place: it went to 12 Cedar Street, I'm at 21 Cedar Street. "
     "Both Springfield, MA 01103. Call (413) 555-0121.",
     [("ORDER", "LG-750044"), ("ADDRESS", "12 Cedar Street"), ("ADDRESS", "21 Cedar Street"),
      ("PHONE", "(413) 555-0121")]),
    ("It's Callum, we spoke on the phone. This is Callum Reid, 07700 900432, about the wardrobe (LG-554210).",
     [("NAME", "Callum Reid"), ("NAME", "Callum"), ("PHONE", "07700 900432"), ("ORDER", "LG-554210")]),
    ("Hello, I need a VAT invoice for LG-806612.\nCompany: Brightwave Media Ltd\nVAT: GB123456789\n"
     "Address: 4 Tanner Street, London SE1 3LD\n\nThanks,\nPriyanka Shah\nOffice Manager",
     [("ORDER", "LG-806612"), ("ADDRESS", "4 Tanner Street, London SE1 3LD"), ("NAME", "Priyanka Shah")]),
    ("Hey Marco! Good news, your refund of $42.00 for LG-119874 went out today. Thanks, Jess @ Larkspur",
     [("NAME", "Marco"), ("ORDER", "LG-119874"), ("NAME", "Jess")]),
    ("Dear Ms. Nakamura,\n\nYour store card application needs one more document. Please don't send your SSN by "
     "email; use the secure form.\n\nRegards,\nLarkspur Goods Credit Team",
     [("NAME", "Nakamura")]),
    ("Hi Ana, thanks for the photos of LG-330219! Could a courier collect the table in Lisbon? "
     "Sorry, we only collect in the UK. Best, Tom",
     [("NAME", "Ana"), ("ORDER", "LG-330219"), ("NAME", "Tom")]),
    ("Kind regards,\nDavid Cohen\nM: +1 646-555-0183 | E: dcohen@cohenlaw.com\n"
     "500 Fifth Avenue, Suite 1200, New York, NY 10110",
     [("NAME", "David Cohen"), ("PHONE", "+1 646-555-0183"), ("EMAIL", "dcohen@cohenlaw.com"),
      ("ADDRESS", "500 Fifth Avenue, Suite 1200, New York, NY 10110")]),
]

NEGATIVES: list[Item] = [
    ("how long does shipping take to 90210?", []),
    ("do you price match? saw it for $39.99 on another site", []),
    ("The kettle is 1.7L, 3000W, and takes 4-5 mins. Is that normal?", []),
    ("Delivered 06/11/2024 at 14:32 according to the app", []),
    ("Is the sale 30% or 40% off? The banner says one thing and the cart another.", []),
    ("I bought 2 in 2021 and 1 in 2023, all three have the same fault", []),
    ("voucher code WELCOME-2024 says expired", []),
    ("can i get 3-5 business days shipping instead of 7-10?", []),
    ("Model 55UQ7500PSF, does the wall mount fit?", []),
    ("EAN on the box: 4006381333931", []),
    ("the cookbook ISBN is 978-1-4920-5635-5, is that the 2nd edition?", []),
    ("open 24/7? or just the website lol", []),
    ("Dimensions: 120 x 60 x 75 cm, weight 32 kg", []),
    ("Part number 1001-2345-67 snapped during assembly", []),
    ("UPC 036000291452 on the label doesn't match the site", []),
    ("100% cotton? the label says 60/40 poly blend", []),
    ("Serial SN 4C02-88A1-7710, bought March 2023", []),
    ("it says 'Error E-1024' and beeps 3 times", []),
    ("Is the 10/10/10 sale on again this year?", []),
    ("ordered size 10-12, got 6-8", []),
    ("is 1200-1500 W enough for a 20 m² room?", []),
    ("2024/06/10 delivery slot 07:00-11:00 please", []),
    ("Postage was £3.95 + £1.50 handling = £5.45?", []),
    ("Order qty 1200 units at $4.75 each = $5,700.00, need a formal quote", []),
    ("I got 2 x KB-2048 keyboards instead of 1", []),
    ("the 1,000 thread count sheets pill after 2 washes", []),
    ("Any chance of restocking the 50-pack? It sold out at 09:00 sharp.", []),
    ("Still on version 2.0.1 of the app, should I update?", []),
    ("my order from 10/06/24 hasn't shipped", []),
    ("The promo says 'spend £75, save £15' but I spent £80.49 and got nothing", []),
    ("week 23 delivery promised, now week 26?!", []),
    ("Hi, do you have the Nimbus Pro in stock? The Nimbus Mini is too small.", []),
    ("reference 2024-0614-88 from the courier", []),
    ("I was told 10-14 days on 5/20, it's now 6/12", []),
    ("Return code RTN-88214 isn't accepted at the drop-off point", []),
    ("Customer number 448812 — does that help you find the account?", []),
    ("Ordered the 3-pack (SKU TW-3PK-GRY) for £24, charged £27.50", []),
    ("do the bulbs work with 110V? I'm moving to the States in 2025", []),
    ("Latitude vs Longitude collection — which one is oak?", []),
    ("Is Saturday delivery available in postcode area M1?", []),
    ("My 6-year-old broke the lid, can I buy just the lid? Part KT-2200-LID", []),
    ("Receipt #0041-0327 from the Leeds store, 12/05/2024 15:41", []),
    ("only 1 of 4 chairs had all 16 screws", []),
    ("Tracking says 'Out for delivery' since 07:12. It's 21:30 now.", []),
    ("1 star. Never again.", []),
    ("can you ship to APO/FPO addresses?", []),
    ("the 3.5 mm jack on the speaker is loose", []),
    ("Q3 2024 catalogue — when does it come out?", []),
    ("Price went from £199 to £249 overnight, 25% jump!", []),
    ("Need 2x USB-C 3.1 cables, 2 m each", []),
]

CORPUS: list[Item] = ORDERS_AND_SHIPPING + CONTACT_DETAILS + PAYMENTS + TECHNICAL + ADDRESSES + NAMES + MIXED + NEGATIVES

# ----------------------------------------------------------------------------------------------
# Slightly out of the declared scope: formats the docstring does not list, names without a
# trigger, addresses without a suffix, lower case, typos. Scored apart.
# ----------------------------------------------------------------------------------------------

OUT_OF_SCOPE: list[Item] = [
    ("call me back on 415 555 0132 please", [("PHONE", "415 555 0132")]),
    ("My daughter's number 1-312-555-0173 is the best one to use", [("PHONE", "1-312-555-0173")]),
    ("T: +44 (0)20 7946 0958", [("PHONE", "+44 (0)20 7946 0958")]),
    ("contact number 07700900789", [("PHONE", "07700900789")]),
    ("phone 3125550147", [("PHONE", "3125550147")]),
    ("Tél : 06.45.21.87.09", [("PHONE", "06.45.21.87.09")]),
    ("Mi número es +34 612 345 678", [("PHONE", "+34 612 345 678")]),
    ("cell +39 347 123 4567, I'm in Milan until Friday", [("PHONE", "+39 347 123 4567")]),
    ("mobile +447700900123 (whatsapp)", [("PHONE", "+447700900123")]),
    ("Ship to:\nMaria Gonzalez\n2217 Lakeview Drive\nAustin, TX 78704",
     [("NAME", "Maria Gonzalez"), ("ADDRESS", "2217 Lakeview Drive\nAustin, TX 78704")]),
    ("From: Tomasz Wiśniewski <tomasz.wisniewski@wp.pl>\nSubject: Re: LG-530118\n\nStill waiting.",
     [("NAME", "Tomasz Wiśniewski"), ("EMAIL", "tomasz.wisniewski@wp.pl"), ("ORDER", "LG-530118")]),
    ("ok thanks, sarah", [("NAME", "sarah")]),
    ("I spoke to Kevin at your Leeds store and he said to email you", [("NAME", "Kevin")]),
    ("my husband Mark Ellison placed the order, can I still change it?", [("NAME", "Mark Ellison")]),
    ("Contact: Helen Ashworth, Brightwave Media", [("NAME", "Helen Ashworth")]),
    ("Account holder: Camille Laurent", [("NAME", "Camille Laurent")]),
    ("MY NAME IS JOHN SMITH AND I WANT A REFUND", [("NAME", "JOHN SMITH")]),
    ("my name is Pieter van der Berg", [("NAME", "Pieter van der Berg")]),
    ("Lieferadresse: Hauptstraße 12, 10115 Berlin", [("ADDRESS", "Hauptstraße 12, 10115 Berlin")]),
    ("adresse : 12 rue de Rivoli, 75004 Paris", [("ADDRESS", "12 rue de Rivoli, 75004 Paris")]),
    ("PO Box 1142, Boise, ID 83701", [("ADDRESS", "PO Box 1142, Boise, ID 83701")]),
    ("300 W 23rd St, New York, NY 10011", [("ADDRESS", "300 W 23rd St, New York, NY 10011")]),
    ("send to 1428 elm st springfield", [("ADDRESS", "1428 elm st")]),
    ("can u send it to 41 chestnut lane instead", [("ADDRESS", "41 chestnut lane")]),
    ("my postcode is SW1A 2AA", [("ADDRESS", "SW1A 2AA")]),
    ("1520 Broadway, New York, NY 10036", [("ADDRESS", "1520 Broadway, New York, NY 10036")]),
    ("221B Baker Street, London NW1 6XE", [("ADDRESS", "221B Baker Street, London NW1 6XE")]),
    ("sort code 20-00-00, account 55779911", []),
    ("refund to nl91abna0417164300", [("IBAN", "nl91abna0417164300")]),
    ("SSN 401 22 9876", [("SSN", "401 22 9876")]),
    ("order LG-48291 (might be missing a digit)", [("ORDER", "LG-48291")]),
    ("order LG 482913", [("ORDER", "LG 482913")]),
    ("ordernumber LG482913", [("ORDER", "LG482913")]),
    ("https://larkspurgoods.com/account/rosa.alvarez/orders won't load",
     [("URL", "https://larkspurgoods.com/account/rosa.alvarez/orders")]),
    ("https://larkspurgoods.com/r?e=tom.baxter%40gmail.com", [("URL", "https://larkspurgoods.com/r?e=tom.baxter%40gmail.com")]),
    ("email is jane dot doe at gmail dot com", [("EMAIL", "jane dot doe at gmail dot com")]),
    ("Diners 3622 720627 1667", [("CARD", "3622 720627 1667")]),
    ("invoices go to accounts@brightwavemedia.co.uk", []),
    ("From: Larkspur Goods <no-reply@larkspurgoods.com>", []),
    ("please cc billing@nordhavn-design.se", []),
    ("return it to returns@larkspurgoods.com?", []),
    ("build 3.2.0.14 of the app", []),
    ("IMEI 490154203237518", []),
    ("Ticket from: Olu Adebayo", [("NAME", "Olu Adebayo")]),
    ("signed,\nLiam", [("NAME", "Liam")]),
    ("xoxo Bea", [("NAME", "Bea")]),
    ("My address is 12, Rose Court, Leicester LE2 1AB", [("ADDRESS", "12, Rose Court, Leicester LE2 1AB")]),
    ("deliver to 8 The Parade, Kenilworth CV8 1AB", [("ADDRESS", "8 The Parade, Kenilworth CV8 1AB")]),
    ("Please phone +1.312.555.0147", [("PHONE", "+1.312.555.0147")]),
    ("login from ::ffff:192.0.2.128", [("IP", "::ffff:192.0.2.128")]),
    ("customer_id 7731902 on the portal", []),
    ("my number is 44 7700 900123", [("PHONE", "44 7700 900123")]),
    ("ring 0049 30 55501234", [("PHONE", "0049 30 55501234")]),
    ("call me (0)30 5550 1234", [("PHONE", "(0)30 5550 1234")]),
    ("tap tel:+13125550147 to call", [("PHONE", "+13125550147")]),
    ("kind regards, emma watts", [("NAME", "emma watts")]),
    ("from Eoin (the one with the broken lamp)", [("NAME", "Eoin")]),
    ("Keizersgracht 123, 1015 CJ Amsterdam", [("ADDRESS", "Keizersgracht 123, 1015 CJ Amsterdam")]),
    ("IBAN DE89-3704-0044-0532-0130-00", [("IBAN", "DE89-3704-0044-0532-0130-00")]),
    ("email jane.doe @ gmail.com", [("EMAIL", "jane.doe @ gmail.com")]),
    ("Amazon order 112-4839201-5539412 was fine, yours wasn't", []),
    ("router 192.168.001.010", [("IP", "192.168.001.010")]),
    ("mailto:priya@raman.dev", [("EMAIL", "priya@raman.dev")]),
    ("ssn is 512 38 4410", [("SSN", "512 38 4410")]),
]


def luhn_ok(number: str) -> bool:
    """Luhn checksum of the digits in `number` (to keep CARD ground truth honest)."""
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    """ISO 7064 mod-97 check (to keep IBAN ground truth honest)."""
    s = re.sub(r"[\s-]", "", value).upper()
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


def truth_spans(text: str, labels: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Every whole-word occurrence of each labelled value, longest values first, copies inside a longer one skipped."""
    spans: list[tuple[int, int, str]] = []
    for kind, value in sorted(labels, key=lambda tv: -len(tv[1])):
        if kind not in TYPES:
            raise ValueError(f"unknown type {kind!r} in {text[:60]!r}")
        if kind == "CARD" and not luhn_ok(value):
            raise ValueError(f"card {value!r} fails Luhn")
        if kind == "IBAN" and not iban_ok(value):
            raise ValueError(f"IBAN {value!r} fails mod-97")
        placed = 0
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text):
            if any(m.start() < e and s < m.end() for s, e, _ in spans):
                continue
            spans.append((m.start(), m.end(), kind))
            placed += 1
        if not placed:
            raise ValueError(f"{kind} {value!r} not found in {text[:60]!r}")
    return sorted(spans)


def excerpt(text: str, start: int, end: int, width: int = 40) -> str:
    """The span with `width` characters either side, on one line."""
    left = ("…" if start > width else "") + text[max(0, start - width) : start]
    right = text[end : end + width] + ("…" if end + width < len(text) else "")
    return (left + "[[" + text[start:end] + "]]" + right).replace("\n", "⏎")


def score(anon: Anonymizer, corpus: list[Item]) -> dict:
    """Per-type and overall precision / recall / F1, exact-boundary rate, misses and false positives."""
    counts = {t: {"truth": 0, "found": 0, "exact": 0, "detected": 0, "correct": 0} for t in TYPES}
    misses, false_positives, loose = [], [], []
    for text, labels in corpus:
        truth = truth_spans(text, labels)
        dets = anon.detect(text)
        for s, e, kind in truth:
            c = counts[kind]
            c["truth"] += 1
            same = [d for d in dets if d.type == kind and d.start < e and s < d.end]
            if same:
                c["found"] += 1
                if any((d.start, d.end) == (s, e) for d in same):
                    c["exact"] += 1
                else:
                    loose.append({"type": kind, "expected": text[s:e], "got": [d.value for d in same],
                                  "excerpt": excerpt(text, s, e)})
            else:
                got = [f"{d.type}:{d.value}" for d in dets if d.start < e and s < d.end]
                misses.append({"type": kind, "expected": text[s:e], "got": got or "nothing",
                               "excerpt": excerpt(text, s, e)})
        for d in dets:
            c = counts[d.type]
            c["detected"] += 1
            if any(kind == d.type and d.start < e and s < d.end for s, e, kind in truth):
                c["correct"] += 1
            else:
                expected = [f"{kind}:{text[s:e]}" for s, e, kind in truth if d.start < e and s < d.end]
                false_positives.append({"type": d.type, "got": d.value, "expected": expected or "nothing",
                                        "excerpt": excerpt(text, d.start, d.end)})

    def prf(c: dict) -> dict:
        p = c["correct"] / c["detected"] if c["detected"] else 1.0
        r = c["found"] / c["truth"] if c["truth"] else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        exact = c["exact"] / c["found"] if c["found"] else 1.0
        return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "exact_boundary": round(exact, 3),
                **c}

    total = {k: sum(c[k] for c in counts.values()) for k in ("truth", "found", "exact", "detected", "correct")}
    return {
        "messages": len(corpus),
        "per_type": {t: prf(c) for t, c in counts.items() if c["truth"] or c["detected"]},
        "overall": prf(total),
        "misses": misses,
        "false_positives": false_positives,
        "boundary_mismatches": loose,
    }


def report(title: str, result: dict) -> None:
    """Print the table, then every miss, false positive and boundary mismatch."""
    print(f"\n=== {title}: {result['messages']} messages ===")
    print(f"{'type':8} {'P':>6} {'R':>6} {'F1':>6} {'exact':>6} {'truth':>6} {'det':>5}")
    rows = [*result["per_type"].items(), ("overall", result["overall"])]
    for name, r in rows:
        print(f"{name:8} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['exact_boundary']:6.3f} "
              f"{r['truth']:6d} {r['detected']:5d}")
    print(f"\nmisses ({len(result['misses'])}):")
    for m in result["misses"]:
        print(f"  {m['type']:7} expected {m['expected']!r} got {m['got']}  | {m['excerpt']}")
    print(f"\nfalse positives ({len(result['false_positives'])}):")
    for m in result["false_positives"]:
        print(f"  {m['type']:7} got {m['got']!r} expected {m['expected']}  | {m['excerpt']}")
    print(f"\nboundary mismatches ({len(result['boundary_mismatches'])}):")
    for m in result["boundary_mismatches"]:
        print(f"  {m['type']:7} expected {m['expected']!r} got {m['got']}")


def main() -> None:
    """Score the in-scope corpus and the out-of-scope set; print both and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpus",
        choices=("first", "fresh"),
        default="first",
        help="first: the corpus below (since used to fix misses); fresh: pii_corpus_fresh.py, written later, blind",
    )
    args = ap.parse_args()
    if args.corpus == "fresh":
        from pii_corpus_fresh import CORPUS_FRESH, OUT_OF_SCOPE_FRESH

        corpus, beyond, name = CORPUS_FRESH, OUT_OF_SCOPE_FRESH, "pii_heldout_fresh.json"
    else:
        corpus, beyond, name = CORPUS, OUT_OF_SCOPE, "pii_heldout.json"
    anon = Anonymizer(PIIConfig())
    results = {"in_scope": score(anon, corpus), "out_of_scope": score(anon, beyond)}
    report("in scope", results["in_scope"])
    report("out of scope (not in the main score)", results["out_of_scope"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
