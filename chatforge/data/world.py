"""The built-in support world: one fictional online store, its facts and its vocabulary.

Everything in this module is data. `chatforge/data/synth.py` turns it into datasets
(knowledge-base text, support conversations, preference pairs, test sets):

    FACTS, EXTRA_FACTS     the store's policies, written once; every answer, KB page and
                           test reference is formatted from these strings, so the fact
                           "30 days" is spelled the same way everywhere it appears
    PRODUCTS               the catalog (electronics carry the warranty)
    LEXICON, USER_TEMPLATES  the words and sentence patterns customers use
    ANSWERS, KB_TOPICS     how the assistant and the help pages say things

Held-out vocabulary. A fixed share of every lexicon pool, of the product nicknames and
of the user templates of every intent is *held out*: training data never uses it, and
the `test_heldout` split always does, so evaluation can tell memorised phrasing from
understanding. Which items are held out is a function of their text only (a SHA-256
ranking), never of the seed, so it is the same in every generated world. An item that
also occurs in fixed text the generator writes anyway (an answer, a help page, a system
prompt, another template or lexicon item) is never held out: "Hope that helps!" in an
answer would otherwise teach the held-out closing "that helps".

Agreement. A product may be named by a plural ("the aurora buds"), so templates and
answers write verbs and pronouns that refer to it as `[singular|plural]` ("[is|are]",
"[it|them]"); `agree` picks one once the product word is known.

Identifier formats (the cleaning stage recognises these):

    order number    LG-482913        ORDER_NUMBER_RE; users sometimes write "#LG-482913"
    tracking        1ZK4Q7X2M5P8     carrier prefix + five letter-digit pairs
    SKU             EL-1001          category code + 4 digits (never looks like an order)
    phone           (312) 555-0147, +1 312-555-0147, +44 7700 900123, +49 30 5550 1234, ...
    card            Luhn-valid Visa / Mastercard / Amex / Discover numbers
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------- the store

STORE_NAME = "Larkspur Goods"
STORE_DOMAIN = "larkspurgoods.com"
SUPPORT_EMAIL = f"support@{STORE_DOMAIN}"

# The policy table. Other parts of chatforge (the support eval, docs, tests) match these
# exact strings, so they use plain ASCII hyphens and one spelling each.
FACTS: dict[str, str] = {
    "return_window": "30 days",
    "return_condition": "unused items in original packaging",
    "refund_method": "original payment method",
    "refund_time": "5-7 business days",
    "standard_shipping_time": "3-5 business days",
    "free_shipping_threshold": "$50",
    "standard_shipping_fee": "$4.99",
    "express_shipping_time": "1-2 business days",
    "express_shipping_fee": "$14.99",
    "cancel_status": "processing",
    "warranty_period": "1 year",
    "warranty_scope": "electronics",
    "warranty_covers": "defects",
    "warranty_excludes": "accidental damage",
    "support_days": "Monday-Friday",
    "support_hours": "9am-6pm",
    "support_timezone": "Eastern",
    "support_email": SUPPORT_EMAIL,
    "password_link": "Forgot password",
    "password_link_expiry": "1 hour",
}

# House rules beyond the policy table, needed so every intent has a checkable answer.
EXTRA_FACTS: dict[str, str] = {
    "damaged_remedy": "free replacement",
    "discount_rule": "one code per order",
    "discount_when": "at checkout",
    "payment_check": "billing address",
    "payment_methods": "Visa, Mastercard, American Express and PayPal",
    "escalation_to": "human",
    "escalation_reply": "1 business day",
}

ORDER_STATUSES: tuple[str, ...] = ("processing", "shipped", "delivered", "cancelled")
ORDER_NUMBER_PREFIX = "LG-"
ORDER_NUMBER_RE = re.compile(r"\bLG-\d{6}\b", re.IGNORECASE)
# (carrier, tracking prefix); a tracking number is the prefix + five letter-digit pairs,
# which keeps it from looking like a phone or card number to a PII recogniser.
CARRIERS: tuple[tuple[str, str], ...] = (("UPS", "1Z"), ("FedEx", "FX"), ("DHL", "JD"), ("USPS", "US"))
TRACKING_RE = re.compile(r"\b(?:1Z|FX|JD|US)(?:[A-Z]\d){5}\b")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# Distinctive policy values that must not show up in an answer about an unrelated topic
# (`forbidden_facts` of the test splits), with the topic each belongs to.
FACT_TOPICS: tuple[tuple[str, str], ...] = (
    ("returns", FACTS["return_window"]),
    ("refunds", FACTS["refund_time"]),
    ("shipping", FACTS["standard_shipping_time"]),
    ("shipping", FACTS["standard_shipping_fee"]),
    ("shipping", FACTS["express_shipping_time"]),
    ("shipping", FACTS["express_shipping_fee"]),
    ("warranty", FACTS["warranty_period"]),
    ("hours", FACTS["support_hours"]),
    ("password", FACTS["password_link_expiry"]),
    ("password", FACTS["password_link"]),
)

# Wrong values used for "wrong_policy" rejected answers. Longest keys are replaced first.
WRONG_FACTS: dict[str, str] = {
    FACTS["return_window"]: "14 days",
    FACTS["refund_time"]: "10-14 business days",
    FACTS["standard_shipping_time"]: "7-10 business days",
    FACTS["express_shipping_time"]: "3-4 business days",
    FACTS["express_shipping_fee"]: "$24.99",
    FACTS["standard_shipping_fee"]: "$9.99",
    FACTS["free_shipping_threshold"]: "$100",
    FACTS["warranty_period"]: "90 days",
    FACTS["support_hours"]: "8am-10pm",
    FACTS["support_days"]: "seven days a week",
    FACTS["password_link_expiry"]: "72 hours",
    EXTRA_FACTS["discount_rule"]: "up to three codes per order",
}

# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Product:
    """One catalog item. `feature_key` is the part of `feature` a correct answer must state."""

    sku: str
    name: str
    category: str
    price: str
    feature: str
    feature_key: str
    nicknames: tuple[str, ...]


def _p(sku: str, name: str, category: str, price: str, feature: str, key: str, *nicks: str) -> Product:
    return Product(sku, name, category, price, feature, key, nicks)


# Prices never equal or contain a policy value ($4.99, $14.99, $50); nicknames are never
# a word-for-word part of any product name, so holding one out cannot leak it.
PRODUCTS: tuple[Product, ...] = (
    _p("EL-1001", "Aurora Wireless Earbuds", "electronics", "$79.00",
       "up to 8 hours of battery life per charge", "8 hours", "aurora buds", "bluetooth earphones"),
    _p("EL-1002", "Summit Noise-Cancelling Headphones", "electronics", "$149.00",
       "active noise cancelling with 30 hours of battery life", "30 hours", "summit cans", "over-ear headphones"),
    _p("EL-1003", "Pulse Fitness Tracker", "electronics", "$59.00",
       "water resistance to 50 meters", "50 meters", "pulse band", "step counter"),
    _p("EL-1004", "Beacon Smart Speaker", "electronics", "$99.00",
       "a built-in voice assistant", "voice assistant", "beacon speaker", "voice speaker"),
    _p("EL-1005", "Volt 10000mAh Power Bank", "electronics", "$39.00",
       "two USB-C ports to charge two devices at once", "two devices", "battery pack", "volt charger"),
    _p("EL-1006", "Lumen LED Desk Lamp", "electronics", "$45.00",
       "five brightness levels", "five brightness levels", "desk light", "lumen lamp"),
    _p("EL-1007", "Orbit 4K Action Camera", "electronics", "$199.00",
       "4K video at 30 frames per second", "4K video", "action cam", "orbit cam"),
    _p("EL-1008", "Nimbus Mechanical Keyboard", "electronics", "$89.00",
       "hot-swappable switches", "hot-swappable", "clicky keyboard", "nimbus keys"),
    _p("EL-1009", "Glide Wireless Mouse", "electronics", "$29.00",
       "a rechargeable battery that lasts about 2 months", "2 months", "glide mouse", "cordless mouse"),
    _p("EL-1010", "Halo Smart Thermostat", "electronics", "$129.00",
       "a learning mode that adapts to your schedule", "learning mode", "halo thermostat", "smart thermo"),
    _p("EL-1011", "Drift Portable Speaker", "electronics", "$64.00",
       "IPX7 waterproofing", "IPX7", "drift speaker", "pool speaker"),
    _p("EL-1012", "Vista 10-inch Tablet", "electronics", "$249.00",
       "64 GB of storage", "64 GB", "vista tab", "ten inch tablet"),
    _p("HM-2001", "Cozy Knit Throw Blanket", "home", "$42.00",
       "a soft knit that is machine washable", "machine washable", "knit blanket", "cozy throw"),
    _p("HM-2002", "Terra Ceramic Planter Set", "home", "$34.00",
       "three pots with drainage holes", "drainage holes", "plant pots", "terra pots"),
    _p("HM-2003", "Haven Memory Foam Pillow", "home", "$48.00",
       "a removable, washable cover", "washable cover", "foam pillow", "haven pillow"),
    _p("HM-2004", "Linen Blackout Curtains", "home", "$56.00",
       "panels that block about 95 percent of light", "95 percent", "blackout drapes", "dark curtains"),
    _p("HM-2005", "Birch Wall Clock", "home", "$38.00",
       "a silent sweep movement", "silent sweep", "birch clock", "silent clock"),
    _p("HM-2006", "Ember Scented Candle", "home", "$18.00",
       "about 40 hours of burn time", "40 hours", "ember candle", "cedar candle"),
    _p("KT-3001", "Copper Pour-Over Kettle", "kitchen", "$58.00",
       "a gooseneck spout for a precise pour", "gooseneck spout", "gooseneck kettle", "copper kettle"),
    _p("KT-3002", "Forge 8-inch Chef Knife", "kitchen", "$65.00",
       "a high-carbon stainless steel blade", "high-carbon", "forge knife", "kitchen knife"),
    _p("KT-3003", "Maple Cutting Board", "kitchen", "$32.00",
       "an end-grain maple surface", "end-grain", "maple board", "chopping board"),
    _p("KT-3004", "Stoneware Dinner Set", "kitchen", "$92.00",
       "four place settings", "four place settings", "dinner plates", "stoneware set"),
    _p("KT-3005", "Steep Cold Brew Pitcher", "kitchen", "$27.00",
       "a 1 liter capacity", "1 liter", "cold brew jug", "steep pitcher"),
    _p("KT-3006", "Thermo Insulated Bottle", "kitchen", "$24.00",
       "insulation that keeps drinks cold for 24 hours", "24 hours", "water bottle", "thermo flask"),
    _p("AP-4001", "Trailhead Rain Jacket", "apparel", "$119.00",
       "fully taped seams", "taped seams", "rain shell", "trailhead jacket"),
    _p("AP-4002", "Merino Crew Socks 3-Pack", "apparel", "$21.00",
       "a blend of merino wool and nylon", "merino wool", "wool socks", "merino socks"),
    _p("AP-4003", "Everyday Canvas Sneakers", "apparel", "$62.00",
       "a cushioned insole", "cushioned insole", "canvas shoes", "everyday sneaks"),
    _p("AP-4004", "Harbor Fleece Hoodie", "apparel", "$54.00",
       "a kangaroo pocket", "kangaroo pocket", "fleece top", "harbor hoodie"),
    _p("AP-4005", "Alpine Beanie", "apparel", "$19.00",
       "a double-layer knit", "double-layer", "winter hat", "knit cap"),
    _p("AP-4006", "Ridge Leather Belt", "apparel", "$36.00",
       "full-grain leather", "full-grain", "brown belt", "ridge belt"),
    _p("OD-5001", "Basecamp 2-Person Tent", "outdoor", "$179.00",
       "a setup time of about 5 minutes", "5 minutes", "basecamp tent", "two person tent"),
    _p("OD-5002", "Ridgeline Daypack 24L", "outdoor", "$74.00",
       "a padded laptop sleeve", "laptop sleeve", "ridgeline pack", "hiking backpack"),
    _p("OD-5003", "Stride Trekking Poles", "outdoor", "$49.00",
       "an adjustable length from 100 to 135 cm", "135 cm", "hiking poles", "walking sticks"),
    _p("OD-5004", "Campfire Enamel Mug", "outdoor", "$14.00",
       "a 12 ounce capacity", "12 ounce", "camp mug", "enamel cup"),
    _p("OD-5005", "Drowse Sleeping Bag", "outdoor", "$98.00",
       "a comfort rating down to 30 degrees Fahrenheit", "30 degrees", "drowse bag", "mummy bag"),
    _p("BT-6001", "Bloom Facial Cleanser", "beauty", "$16.00",
       "a fragrance-free formula", "fragrance-free", "face wash", "bloom cleanser"),
    _p("BT-6002", "Dew Hydrating Moisturizer", "beauty", "$26.00",
       "hyaluronic acid for all-day hydration", "hyaluronic acid", "face cream", "dew lotion"),
    _p("BT-6003", "Shea Hand Cream Trio", "beauty", "$22.00",
       "three travel-size tubes", "travel-size", "hand lotion", "shea trio"),
    _p("BT-6004", "Bamboo Hair Brush", "beauty", "$17.00",
       "natural bamboo bristles", "bamboo bristles", "wooden brush", "bamboo comb"),
)  # fmt: skip


def is_plural(noun: str) -> bool:
    """Whether a product name or nickname is a plural noun ("Aurora Wireless Earbuds", "wool socks")."""
    last = noun.split()[-1].lower()
    return last.endswith("s") and not last.endswith("ss")


_AGREE = re.compile(r"\[([^\[\]|]*)\|([^\[\]|]*)\]")


def agree(text: str, plural: bool) -> str:
    """Resolve every `[singular|plural]` choice in `text` for a singular or plural product."""
    return _AGREE.sub(lambda m: m.group(2 if plural else 1), text)


# --------------------------------------------------------------------------- intents

INTENTS: tuple[str, ...] = (
    "order_status", "return", "refund", "exchange", "cancel_order", "change_address",
    "shipping", "damaged_item", "warranty", "password_reset", "payment_failure",
    "discount_code", "product_question", "store_hours", "complaint_escalation",
    "greeting", "out_of_scope", "abusive_user",
)  # fmt: skip

# Sub-questions of an intent; each has its own user templates and answer.
VARIANTS: dict[str, tuple[str, ...]] = {
    "order_status": ORDER_STATUSES,
    "cancel_order": ORDER_STATUSES,
    "change_address": ("processing", "shipped", "none"),
    "shipping": ("standard_time", "cost", "free", "express"),
    "warranty": ("defect", "accident"),
    "password_reset": ("forgot", "expired"),
    "discount_code": ("not_working", "after_order"),
    "product_question": ("price", "feature", "warranty"),
    "store_hours": ("hours", "weekend", "contact"),
}

# Policy topics an answer to the intent may legitimately touch; facts of any other topic
# are candidates for the test splits' `forbidden_facts`.
ON_TOPIC: dict[str, tuple[str, ...]] = {
    "order_status": ("shipping", "refunds", "returns"),
    "return": ("returns", "refunds"),
    "refund": ("refunds", "returns"),
    "exchange": ("returns", "refunds", "shipping"),
    "cancel_order": ("returns", "refunds", "shipping"),
    "change_address": ("shipping",),
    "shipping": ("shipping",),
    "damaged_item": ("returns", "refunds", "warranty"),
    "warranty": ("warranty", "returns"),
    "password_reset": ("password", "hours"),
    "payment_failure": ("refunds", "hours"),
    "discount_code": ("shipping",),
    "product_question": ("warranty", "shipping", "returns"),
    "store_hours": ("hours",),
    "complaint_escalation": ("hours", "refunds", "returns"),
    "greeting": ("hours",),
    "out_of_scope": (),
    "abusive_user": ("refunds", "returns", "shipping"),
}

# Natural follow-up questions after an intent (a second question in the same chat).
FOLLOW_UPS: dict[str, tuple[str, ...]] = {
    "order_status": ("shipping", "change_address", "cancel_order"),
    "return": ("refund", "exchange"),
    "refund": ("return",),
    "exchange": ("return", "shipping"),
    "cancel_order": ("refund", "shipping"),
    "change_address": ("shipping",),
    "shipping": ("shipping", "discount_code"),
    "damaged_item": ("refund", "return"),
    "warranty": ("return", "store_hours"),
    "password_reset": ("store_hours",),
    "payment_failure": ("discount_code", "store_hours"),
    "discount_code": ("shipping",),
    "product_question": ("shipping", "warranty", "return"),
    "store_hours": ("password_reset", "shipping"),
    "complaint_escalation": ("store_hours",),
    "greeting": ("shipping", "return", "store_hours", "product_question", "password_reset"),
    "out_of_scope": ("store_hours", "shipping"),
    "abusive_user": ("refund", "return", "shipping"),
}

# Intents whose answer depends on the order record placed in the system message.
ORDER_CONTEXT_INTENTS: tuple[str, ...] = ("order_status", "cancel_order")
# Intents where an agent would plausibly ask for the order number first.
ORDER_NUMBER_INTENTS: tuple[str, ...] = (
    "return", "refund", "exchange", "damaged_item", "change_address", "complaint_escalation",
)  # fmt: skip

# --------------------------------------------------------------------------- lexicon

# Slot fillers for user templates. The first entry of every pool is its core item and is
# never held out, so templates may use it literally. Items never need agreement with the
# product ("started acting up", not "is acting up"), and verb items are never separable
# phrasal verbs in front of a pronoun ("how do I call off it"): templates put a noun
# after them. An item that occurs in other fixed text is simply never held out (see
# `split_heldout`).
LEXICON: dict[str, tuple[str, ...]] = {
    "hi": ("hi", "hello", "hey", "hi there", "hello there", "hey there", "good morning",
           "good afternoon", "good evening", "greetings", "howdy", "hiya", "heya", "dear support team"),
    "thanks": ("thanks", "thank you", "thx", "thanks a lot", "many thanks", "much appreciated",
               "cheers", "appreciate it", "ty", "thanks so much", "thank you kindly", "thanks a bunch",
               "grateful for the help"),
    "polite": ("please help", "any help is appreciated", "I'd appreciate a quick reply",
               "thanks in advance", "hope you can help", "please advise", "let me know",
               "looking forward to your answer", "would be grateful for an answer",
               "I'd be really grateful", "get back to me when you can"),
    "ctx": ("I have a quick question", "first time ordering from you", "sorry to bother you",
            "I'm kind of in a hurry", "a friend recommended your shop", "I've shopped with you for years",
            "I couldn't find this on the website", "sorry if this was asked before",
            "I'm on my phone so excuse the typos", "my sister placed the order for me",
            "it was meant as a birthday gift", "I'm new to online shopping",
            "I already looked through the FAQ", "hope your day is going well",
            "English is not my first language"),
    "order": ("order", "package", "parcel", "shipment", "purchase", "stuff"),
    "where": ("where is", "what's the status of", "any update on", "can you track",
              "what happened to", "what's going on with", "can you check on", "I need an update on",
              "how far along is", "can you look into"),
    "return_verb": ("return", "send back", "ship back", "mail back", "bring back"),
    "money": ("my refund", "my money back", "the reimbursement", "the money", "my credit", "the cash"),
    "cancel": ("cancel", "call off", "scrap", "undo", "drop", "back out of"),
    "broken": ("arrived broken", "came damaged", "showed up cracked", "arrived smashed",
               "got crushed in transit", "arrived in pieces", "came with a big scratch", "showed up dented"),
    "fault": ("stopped working", "died", "won't turn on", "won't stop glitching", "started acting up",
              "quit on me", "turned out to be defective", "stopped charging", "started freezing up"),
    "ship": ("shipping", "delivery", "postage", "dispatch"),
    "fast": ("express", "faster", "quicker", "expedited", "rush", "speedier", "priority"),
    "code": ("discount code", "promo code", "coupon", "voucher", "promotional code", "savings code"),
    "locked": ("I forgot my password", "I can't log in", "I'm locked out of my account",
               "my password isn't working", "I can't sign in", "the login keeps failing",
               "I lost my password", "I can't get into my account"),
    "declined": ("my card was declined", "the payment failed", "checkout keeps failing",
                 "my payment won't go through", "it says transaction declined", "I get a payment error",
                 "the card got rejected", "the bank refused the charge"),
    "human": ("a human", "a real person", "a manager", "a supervisor", "someone in charge",
              "a live agent", "an actual person", "your boss"),
    "upset": ("really disappointed", "very unhappy", "fed up", "frustrated", "not happy at all",
              "extremely annoyed", "sick of this", "at my wits' end"),
    "insult": ("you people are useless", "this is the worst store ever", "are you all idiots",
               "what a joke of a company", "your service is garbage",
               "you clowns can't do anything right", "this company is a scam",
               "absolutely pathetic service", "do you even know what you're doing", "stupid bot"),
    "smalltalk": ("how are you", "how's it going", "are you a bot", "what can you do",
                  "who am I talking to", "is anyone there", "how's your day", "are you human"),
    "offtopic": ("what's the weather tomorrow", "can you write my essay", "who won the game last night",
                 "what's the capital of Australia", "can you help with my math homework",
                 "tell me a joke", "which stocks should I buy", "recommend a good movie",
                 "how do I fix my car", "give me a pasta recipe", "translate this poem into Italian",
                 "who will win the election"),
    "connector": ("also", "one more thing", "oh and", "another question", "quick follow-up",
                  "btw", "while I have you", "and one last thing"),
    "closing": ("that's all", "that helps", "perfect", "got it", "awesome", "that answers it",
                "you've been very helpful", "all sorted", "makes sense"),
}  # fmt: skip

# User templates: `{pool}` is a LEXICON slot, `{product}` the product in the scene,
# `{order_no}` the order number. Keys are "intent" or "intent/variant" plus a few dialogue
# moves (vague openers, clarifying replies, closings). The first template of each list
# is the core one and is never held out. `[singular|plural]` agrees with the product word
# of the template, or of the user's last message that named one (see `agree`).
USER_TEMPLATES: dict[str, tuple[str, ...]] = {
    "order_status": (
        "{where} my {order}?",
        "I ordered something a while ago and it still hasn't arrived. {where} it?",
        "has my {order} shipped yet?",
        "when will my {order} get here?",
        "can you tell me where my {order} is right now",
        "I'd like to know the current status of my {order}",
        "my {order} hasn't shown up yet, is it on the way?",
        "is my {order} still being prepared or is it on its way?",
        "just checking in on my {order}, any news?",
        "been waiting ages for my {order}, what is going on",
    ),
    "return": (
        "I want to {return_verb} something I bought",
        "how do I {return_verb} the {product}?",
        "can I {return_verb} the {product} if I don't like [it|them]?",
        "what's your return policy?",
        "the {product} [isn't|aren't] what I expected, can I {return_verb} my {order}?",
        "is it too late to {return_verb} my {order}? it came two weeks ago",
        "how long do I have to {return_verb} an item?",
        "I changed my mind about the {product}. what are my options for sending [it|them] back?",
        "do you accept returns on items that were bought on sale?",
        "need to {return_verb} a gift I received, how does that work",
    ),
    "refund": (
        "when will I get {money}?",
        "I sent my {order} back last week, where is {money}?",
        "how long do refunds take?",
        "still waiting on {money} for the {product} I returned",
        "how will I receive {money}? same card?",
        "you received my return but I haven't seen {money} yet",
        "do refunds go back to my credit card or store credit?",
        "what is the usual timeline for getting {money}",
    ),
    "exchange": (
        "can I exchange the {product} for a different size?",
        "I'd like to swap the {product} for another color",
        "how do exchanges work?",
        "got the wrong size, can I trade it for a bigger one?",
        "is it possible to exchange an item instead of returning it?",
        "the {product} [doesn't|don't] fit, can I get a different one instead?",
        "I want to switch the {product} for a different model",
        "do you do exchanges or only refunds?",
    ),
    "cancel_order": (
        "I want to {cancel} my {order}",
        "can you {cancel} my {order} please?",
        "I ordered by mistake, how do I {cancel} the order?",
        "am I still in time to {cancel} my {order}?",
        "changed my mind, I don't want the {product} anymore. can I {cancel} the order?",
        "how can I {cancel} an order I just placed?",
        "please {cancel} the {product} I ordered yesterday",
        "need to {cancel} my {order} asap, I picked the wrong thing",
    ),
    "change_address": (
        "I need to change the shipping address on my {order}",
        "I put the wrong address on my {order}, can you fix it?",
        "can I update where my {order} is being sent?",
        "I moved last week, can you send my {order} to my new place?",
        "there's a typo in my street address, can it be corrected?",
        "is it possible to redirect my {order} to my office?",
        "how do I edit the address for an order I already placed?",
        "wrong zip code on my {order}, can that be changed?",
    ),
    "shipping/standard_time": (
        "how long does {ship} take?",
        "how many days does regular {ship} take?",
        "what's the normal {ship} time?",
        "if I order today, when would it arrive?",
        "how fast is standard {ship}?",
        "roughly how long before an order shows up at my door?",
        "what are your {ship} times?",
        "does standard {ship} take long?",
    ),
    "shipping/cost": (
        "how much is {ship}?",
        "what do you charge for {ship}?",
        "is there a {ship} fee?",
        "what does standard {ship} cost?",
        "how much will it cost to get my order sent to me?",
        "are there extra charges for {ship}?",
        "what's the price of {ship} on a small order?",
    ),
    "shipping/free": (
        "do you offer free {ship}?",
        "how much do I need to spend for free {ship}?",
        "is {ship} ever free?",
        "what's the minimum order for free {ship}?",
        "can I get free {ship} on my order?",
        "is there a threshold for {ship} at no cost?",
    ),
    "shipping/express": (
        "do you have {fast} shipping?",
        "I need it quickly, is there an option for {fast} shipping?",
        "how much is {fast} shipping and how long does it take?",
        "can I pay extra to get it sooner?",
        "what's your quickest shipping option?",
        "is there next-day or {fast} shipping?",
        "I need my order by the weekend, what's the fastest way?",
    ),
    "damaged_item": (
        "my {product} {broken}",
        "the {product} {broken}, what do I do?",
        "my {order} {broken}, can you help?",
        "I just opened the {product} and [it's|they're] damaged",
        "the outer carton was crushed and the {product} inside [is|are] broken",
        "received a damaged item, I want a replacement",
        "the {product} I got [has a crack in it|have cracks in them]",
        "item came damaged in the mail, what now?",
    ),
    "warranty/defect": (
        "my {product} {fault}",
        "the {product} {fault} after a few months, [is it|are they] under warranty?",
        "is there a warranty on the {product}?",
        "what does your warranty cover?",
        "how long is the warranty on electronics?",
        "the {product} {fault}, can I get [it|them] repaired?",
        "my {product} {fault} and I've barely used [it|them]",
        "do your gadgets come with any guarantee?",
    ),
    "warranty/accident": (
        "I dropped the {product} and the screen cracked, is that covered?",
        "spilled water on my {product}, does the warranty cover that?",
        "my kid broke the {product}, can I use the warranty?",
        "the {product} fell off the table and stopped working, [is it|are they] covered?",
        "does the warranty cover accidental damage?",
        "I stepped on my {product} by accident, will you replace [it|them]?",
        "my dog chewed the {product}, am I covered?",
    ),
    "password_reset/forgot": (
        "{locked}",
        "{locked}, how do I reset it?",
        "how do I reset my password?",
        "{locked} and need to check my orders",
        "I can't remember my password for the site",
        "{locked}. what are the steps to recover access?",
        "what do I do if I forgot my login details?",
    ),
    "password_reset/expired": (
        "the password reset link says it expired",
        "I clicked the reset link but it doesn't work anymore",
        "my reset email link is expired, what now?",
        "the link to reset my password isn't valid anymore",
        "I got the reset email yesterday and the link no longer works",
        "how long is the password reset link good for?",
    ),
    "payment_failure": (
        "{declined}",
        "{declined}, what should I do?",
        "I tried to check out but {declined}",
        "why does my payment keep failing?",
        "{declined} even though I have money in my account",
        "which payment methods do you accept? {declined}",
        "can't finish checking out, {declined}",
        "{declined} three times now, is something wrong on your end?",
    ),
    "discount_code/not_working": (
        "my {code} isn't working",
        "the {code} I have says invalid",
        "why won't my {code} apply?",
        "can I stack more than one {code} on a single order?",
        "tried entering a {code} at checkout and got an error",
        "does the {code} work on sale items?",
        "my {code} expired yesterday, can you still honor it?",
    ),
    "discount_code/after_order": (
        "I forgot to use my {code}, can you apply it now?",
        "can I add a {code} to an order I already placed?",
        "I placed my order without the {code}, can I still get the discount?",
        "just realized I had a {code}, is it too late?",
        "can you apply a {code} retroactively?",
        "can the {code} be added after I paid?",
    ),
    "product_question/price": (
        "how much [is|are] the {product}?",
        "what [does|do] the {product} cost?",
        "what's the price on the {product}?",
        "[is|are] the {product} expensive?",
        "price check on the {product} please",
        "how much would I pay for the {product}?",
        "what are you charging for the {product} these days?",
    ),
    "product_question/feature": (
        "can you tell me about the {product}?",
        "what's special about the {product}?",
        "what are the main features of the {product}?",
        "[is|are] the {product} any good? what [does it|do they] do?",
        "I'm thinking of buying the {product}, what should I know?",
        "give me the key details on the {product}",
        "what makes the {product} worth it?",
    ),
    "product_question/warranty": (
        "[does|do] the {product} come with a warranty?",
        "[is|are] the {product} covered if [it breaks|they break]?",
        "how long [is|are] the {product} guaranteed for?",
        "what kind of warranty [does|do] the {product} have?",
        "if the {product} [stops|stop] working, will you fix [it|them]?",
    ),
    "store_hours/hours": (
        "what are your support hours?",
        "when is customer service open?",
        "what time does support close today?",
        "when can I reach a person on your team?",
        "what hours is your help desk available?",
        "are you open right now?",
        "when does your chat support start in the morning?",
    ),
    "store_hours/weekend": (
        "are you open on weekends?",
        "can I get support on Saturday?",
        "is customer service available on Sundays?",
        "do you work weekends?",
        "will anyone answer if I write on a Sunday?",
        "is there weekend support?",
    ),
    "store_hours/contact": (
        "what's your support email?",
        "how can I contact you by email?",
        "what email address do I write to for help?",
        "is there an email for customer service?",
        "where do I send an email about my order?",
        "how do I get in touch with support?",
    ),
    "complaint_escalation": (
        "I want to speak to {human}",
        "I'm {upset}. this is the third time I'm contacting you, get me {human}",
        "nobody has fixed my problem, escalate this to {human}",
        "I'm {upset}. my complaint was handled badly and I want to talk to {human}",
        "I want to file a formal complaint",
        "this has been going on for weeks, I need {human} to look at it",
        "I'm {upset}, your team keeps ignoring my emails",
        "transfer me to {human} right now",
    ),
    "greeting": (
        "{hi}",
        "{hi}, {smalltalk}?",
        "{smalltalk}?",
        "{hi}! is this Larkspur Goods support?",
        "{hi}, anybody around?",
        "{hi}, just popping in",
        "{hi}. {smalltalk}? first time chatting here",
    ),
    "out_of_scope": (
        "{offtopic}?",
        "can you help me with something unrelated: {offtopic}?",
        "random question, {offtopic}?",
        "{offtopic}? I know you're a store bot but still",
        "quick one, {offtopic}",
        "I'm bored. {offtopic}?",
    ),
    "abusive_user": (
        "{insult}",
        "{insult}. where is my {order}??",
        "{insult}! I've been waiting forever",
        "seriously, {insult}",
        "{insult}, fix my problem now",
        "why is this so hard?? {insult}",
        "{insult}. I want answers",
    ),
    # dialogue moves
    "vague": (
        "I need some help",
        "can someone help me?",
        "I have a question",
        "got a minute?",
        "need help with something",
        "is anyone available to help?",
        "I have an issue, anyone?",
        "quick question for you",
    ),
    "product_vague": (
        "I have a question about one of your products",
        "quick product question",
        "wondering about something in your catalog",
        "can you tell me about an item you sell?",
        "I'm looking at one of your products",
        "need info on a product",
    ),
    "warranty_vague": (
        "my {product} {fault}",
        "something's wrong with my {product}",
        "the {product} [doesn't|don't] work anymore",
        "having trouble with my {product}",
        "my {product} [is|are] broken",
    ),
    "warranty_reply/defect": (
        "[it|they] just stopped on [its|their] own",
        "no accident, [it|they] simply quit",
        "nothing happened to [it|them], but [it|they] {fault}",
        "I only used [it|them] at my desk and [it|they] {fault}",
        "totally normal use, no drops",
    ),
    "warranty_reply/accident": (
        "I dropped [it|them], honestly",
        "[it|they] fell off the counter",
        "I spilled coffee on [it|them]",
        "my little one threw [it|them]",
        "[it|they] got wet in the rain",
    ),
    "order_no_reply": (
        "it's {order_no}",
        "sure, {order_no}",
        "the order number is {order_no}",
        "{order_no}",
        "here you go: #{order_no}",
        "should be {order_no}",
    ),
    "closing": (
        "{thanks}",
        "{closing}, {thanks}",
        "{thanks}, {closing}",
        "ok {thanks}",
        "{closing}. {thanks} again",
        "{thanks}! that's everything for today",
    ),
}

# --------------------------------------------------------------------------- answers

# An answer is a sequence of parts; one alternative of each part is used, and an empty
# alternative means the part may be left out. `{name}` fields are FACTS, EXTRA_FACTS or
# scene values (order_no, carrier, tracking, date, product, price, sku, category,
# feature, store); `[singular|plural]` agrees with the product (see `agree`).
Part = tuple[str, ...]

OPENER: Part = ("", "", "", "Happy to help!", "Sure thing!", "Thanks for reaching out.", "Of course.",
                "Good question!", "I can help with that.")  # fmt: skip
CLOSER: Part = ("", "", "", "Anything else I can help with?", "Let me know if there's anything else.",
                "Is there anything else I can do for you?", "Hope that helps!")  # fmt: skip
SORRY: Part = ("I'm sorry about that!", "Sorry for the trouble.", "I'm really sorry to hear that.",
               "That's frustrating, sorry about that.")  # fmt: skip
_RETURN_LATER: Part = (
    "Once it arrives, you can return it within {return_window} of delivery, as long as it's unused and in the original packaging.",
    "When it arrives, just send it back within {return_window} of delivery for a refund.",
    "After it's delivered you have {return_window} to return it if it's unused and in its original packaging.",
)
_REFUND_NOTE: Part = (
    "If you were charged, the refund goes back to your {refund_method} within {refund_time}.",
    "Any payment is refunded to your {refund_method} within {refund_time}.",
)

ANSWERS: dict[str, tuple[Part, ...]] = {
    "order_status/processing": (
        OPENER,
        ("Your order {order_no} is still processing, so it hasn't shipped yet.",
         "Order {order_no} is currently processing at our warehouse and hasn't shipped yet.",
         "I checked order {order_no}: it's still processing and hasn't left our warehouse."),
        ("As soon as it ships, you'll get an email with the carrier and tracking number.",
         "Once it ships we'll email you the tracking details.",
         "You'll receive a shipping confirmation with tracking as soon as it's on its way."),
        CLOSER,
    ),
    "order_status/shipped": (
        OPENER,
        ("Good news: order {order_no} has shipped with {carrier}.",
         "Your order {order_no} shipped via {carrier}.",
         "Order {order_no} is on its way; it shipped with {carrier}."),
        ("The tracking number is {tracking}.",
         "You can follow it with tracking number {tracking}.",
         "Use tracking number {tracking} on the {carrier} website to see where it is."),
        CLOSER,
    ),
    "order_status/delivered": (
        OPENER,
        ("Order {order_no} was delivered on {date}.",
         "According to {carrier}, your order {order_no} was delivered on {date}.",
         "Your order {order_no} shows as delivered on {date}."),
        ("", "If you can't find it, check around your door or with neighbors, and let us know if it still doesn't turn up.",
         "If it's not there, please check with neighbors or your building's mailroom and get back to us."),
        CLOSER,
    ),
    "order_status/cancelled": (
        ("Order {order_no} was cancelled, so it won't be shipped.",
         "Your order {order_no} shows as cancelled.",
         "It looks like order {order_no} has been cancelled."),
        _REFUND_NOTE,
        ("", "You're welcome to place a new order anytime."),
        CLOSER,
    ),
    "return": (
        OPENER,
        ("You can return unused items in original packaging within {return_window} of delivery.",
         "Our return window is {return_window} from delivery, as long as the items are unused and in their original packaging.",
         "Returns are accepted within {return_window} of delivery for {return_condition}.",
         "As long as it's unused and in the original packaging, you have {return_window} from delivery to send it back."),
        ("", "Start the return from Your Orders on our website and we'll email you a return label.",
         "Just open Your Orders, pick the item and choose Return; a return label will be emailed to you."),
        ("", "Once the return arrives, your refund goes to your {refund_method} within {refund_time}.",
         "After we receive it, we refund your {refund_method} within {refund_time}."),
        CLOSER,
    ),
    "refund": (
        OPENER,
        ("Refunds go back to your {refund_method} within {refund_time} after your return arrives at our warehouse.",
         "Once your return reaches us, we refund your {refund_method}; the money shows up within {refund_time}.",
         "After the returned item arrives, expect the refund on your {refund_method} within {refund_time}."),
        ("", "Depending on your bank, it can show as pending for a little while before it clears.",
         "You'll get an email as soon as we process it."),
        CLOSER,
    ),
    "exchange": (
        OPENER,
        ("Exchanges work like returns: within {return_window} of delivery, for {return_condition}.",
         "You can exchange an item within {return_window} of delivery as long as it's unused and in its original packaging.",
         "We accept exchanges for {return_window} from delivery if the item is unused and in the original packaging."),
        ("Start it from Your Orders and choose the size or color you want; we'll ship the new one once the original is on its way back.",
         "The quickest way is to return the original and place a new order for the one you want."),
        CLOSER,
    ),
    "cancel_order/processing": (
        OPENER,
        ("Order {order_no} is still processing, so you can cancel it free of charge.",
         "Good timing: order {order_no} is still processing, which means cancelling is free.",
         "Since order {order_no} hasn't shipped and is still processing, you can cancel it for free."),
        ("Go to Your Orders, open the order and choose Cancel order.",
         "Just open it in Your Orders and click Cancel order; you'll get a confirmation email."),
        CLOSER,
    ),
    "cancel_order/shipped": (
        ("Order {order_no} has already shipped with {carrier}, so it can't be cancelled anymore.",
         "Unfortunately order {order_no} has already shipped, so we're not able to cancel it."),
        _RETURN_LATER,
        CLOSER,
    ),
    "cancel_order/delivered": (
        ("Order {order_no} was already delivered on {date}, so it can't be cancelled.",
         "Your order {order_no} was delivered on {date}, so cancelling isn't possible anymore."),
        ("You can still return it within {return_window} of delivery if it's unused and in the original packaging.",
         "Instead, you can send it back within {return_window} of delivery for a refund, as long as it's unused."),
        CLOSER,
    ),
    "cancel_order/cancelled": (
        ("Order {order_no} is already cancelled, so there's nothing more you need to do.",
         "Good news, order {order_no} was already cancelled."),
        _REFUND_NOTE,
        CLOSER,
    ),
    "change_address/processing": (
        OPENER,
        ("Order {order_no} is still processing, so the address can still be changed.",
         "Since order {order_no} is still processing, we can update the shipping address."),
        ("You can edit it under Your Orders, or reply here with the corrected address and we'll update it before it ships.",
         "Reply with the full new address and we'll update the order before it ships."),
        CLOSER,
    ),
    "change_address/shipped": (
        ("Order {order_no} has already shipped, so we can't change the address anymore.",
         "Unfortunately order {order_no} has already shipped with {carrier}, so the address can't be changed on our side."),
        ("You can contact {carrier} with tracking number {tracking} to ask about redirecting it.",
         "{carrier} may be able to redirect it if you give them tracking number {tracking}."),
        CLOSER,
    ),
    "change_address/none": (
        OPENER,
        ("We can change the shipping address as long as the order is still processing.",
         "Addresses can be updated while an order is still processing."),
        ("Once it has shipped, the address can't be changed anymore, though the carrier may be able to redirect it.",
         "After it ships we can't edit the address, but the carrier can sometimes redirect the parcel."),
        ("", "If it's still processing, you can edit the address under Your Orders."),
        CLOSER,
    ),
    "shipping/standard_time": (
        OPENER,
        ("Standard shipping takes {standard_shipping_time}.",
         "With standard shipping, orders arrive in {standard_shipping_time}.",
         "Orders sent with standard shipping take {standard_shipping_time} to arrive."),
        ("", "It's free on orders over {free_shipping_threshold}, otherwise {standard_shipping_fee}.",
         "If you need it faster, express shipping takes {express_shipping_time} for {express_shipping_fee}."),
        CLOSER,
    ),
    "shipping/cost": (
        OPENER,
        ("Standard shipping costs {standard_shipping_fee}, and it's free on orders over {free_shipping_threshold}.",
         "Shipping is {standard_shipping_fee} with standard service, or free once your order is over {free_shipping_threshold}."),
        ("", "Standard orders arrive in {standard_shipping_time}.",
         "Express shipping is also available for {express_shipping_fee}."),
        CLOSER,
    ),
    "shipping/free": (
        ("Yes! Standard shipping is free on orders over {free_shipping_threshold}.",
         "Orders over {free_shipping_threshold} ship free with standard shipping."),
        ("Below that, standard shipping costs {standard_shipping_fee}.",
         "Smaller orders pay {standard_shipping_fee} for standard shipping."),
        CLOSER,
    ),
    "shipping/express": (
        OPENER,
        ("Express shipping takes {express_shipping_time} and costs {express_shipping_fee}.",
         "Our express option arrives in {express_shipping_time} for {express_shipping_fee}.",
         "Express shipping is {express_shipping_fee} and gets to you in {express_shipping_time}."),
        ("", "You can pick it at checkout.",
         "Standard shipping takes {standard_shipping_time} if you're not in a hurry."),
        CLOSER,
    ),
    "damaged_item": (
        SORRY,
        ("Please reply with a photo of the damage and we'll send a {damaged_remedy} or a full refund, whichever you prefer.",
         "Send us a photo of the damaged item and we'll ship a {damaged_remedy} or refund you in full.",
         "If you share a photo of the damage, we'll arrange a {damaged_remedy} or a full refund."),
        CLOSER,
    ),
    "warranty/defect": (
        OPENER,
        ("Our electronics come with a warranty of {warranty_period} that covers defects.",
         "Electronics are covered for {warranty_period} against defects.",
         "Every electronics item is covered by our warranty for {warranty_period} against defects."),
        ("If your device stopped working on its own, contact us with your order details and we'll repair or replace it.",
         "If [it|they] failed during normal use, send us your order details and a short description and we'll repair or replace [it|them]."),
        ("", "Note that the warranty doesn't cover {warranty_excludes}."),
        CLOSER,
    ),
    "warranty/accident": (
        SORRY,
        ("Our warranty of {warranty_period} on electronics covers defects, but not {warranty_excludes}, so a drop or spill isn't covered.",
         "Unfortunately {warranty_excludes} like drops or spills isn't covered; the warranty of {warranty_period} on electronics only covers defects."),
        CLOSER,
    ),
    "password_reset/forgot": (
        OPENER,
        ('Click "{password_link}" on the sign-in page and we\'ll email you a reset link.',
         'Use the "{password_link}" link on the sign-in page to get a reset email.',
         'On the sign-in page, choose "{password_link}" and follow the link we email you.'),
        ("", "The link expires after {password_link_expiry}, so use it soon.",
         "Check your spam folder if the email doesn't arrive within a few minutes."),
        CLOSER,
    ),
    "password_reset/expired": (
        ("Reset links expire after {password_link_expiry} for security.",
         "For security, each reset link is only valid for {password_link_expiry}."),
        ('Just request a new one with the "{password_link}" link on the sign-in page.',
         'You can get a fresh link anytime from "{password_link}" on the sign-in page.'),
        CLOSER,
    ),
    "payment_failure": (
        SORRY,
        ("Payments are usually declined when the {payment_check} doesn't match the card, the card has expired, or the bank blocks the charge.",
         "Most declines happen because the {payment_check} doesn't match what your bank has on file, or because of a bank security hold."),
        ("Double-check the card details and try again, or use another method: we accept {payment_methods}.",
         "Please check the card details and try once more; we also accept {payment_methods}."),
        ("", "A declined payment is never charged.", "If it keeps failing, your bank can tell you why it was blocked."),
    ),
    "discount_code/not_working": (
        OPENER,
        ("Codes are case-sensitive and have to be entered {discount_when} before they expire.",
         "Make sure the code is typed exactly as shown and entered {discount_when}; expired codes won't apply."),
        ("You can use {discount_rule}, and codes can't be combined with other offers.",
         "Only {discount_rule} is allowed."),
        CLOSER,
    ),
    "discount_code/after_order": (
        ("Discount codes have to be entered {discount_when}, so they can't be added to an order that's already placed.",
         "Codes only work when entered {discount_when}; we can't apply them after the order is placed."),
        ("", "If the order is still processing, you could cancel it for free and order again with the code."),
        CLOSER,
    ),
    "product_question/price": (
        OPENER,
        ("The {product} [is|are] {price}.", "The {product} [costs|cost] {price}.", "We sell the {product} for {price}."),
        ("", "You'll find [it|them] in our {category} range (SKU {sku}).", "[It's|They're] part of our {category} collection (SKU {sku})."),
        ("", "Orders over {free_shipping_threshold} ship free."),
        CLOSER,
    ),
    "product_question/feature": (
        OPENER,
        ("The {product} [features|feature] {feature}.", "A highlight of the {product} is {feature}.",
         "The {product} [comes|come] with {feature}."),
        ("", "[It costs|They cost] {price}.", "[It's|They're] {price} (SKU {sku})."),
        CLOSER,
    ),
    "product_question/warranty": (
        ("Yes, the {product} [is|are] covered by our warranty for {warranty_period}, like all our electronics.",
         "Like all our electronics, the {product} [comes|come] with a warranty of {warranty_period} against defects."),
        ("", "The warranty covers defects but not {warranty_excludes}."),
        CLOSER,
    ),
    "store_hours/hours": (
        ("Our support team is available {support_days}, {support_hours} {support_timezone}.",
         "You can reach us {support_days}, {support_hours} {support_timezone}.",
         "Support hours are {support_hours} {support_timezone}, {support_days}."),
        ("", "Outside those hours, email {support_email} and we'll reply the next business day."),
        CLOSER,
    ),
    "store_hours/weekend": (
        ("We're not available on weekends; support runs {support_days}, {support_hours} {support_timezone}.",
         "Our team works {support_days} only, {support_hours} {support_timezone}."),
        ("", "You can still email {support_email} over the weekend and we'll reply on Monday."),
        CLOSER,
    ),
    "store_hours/contact": (
        ("You can email us at {support_email}.", "Our support address is {support_email}.",
         "Write to {support_email} and our team will get back to you."),
        ("", "We answer {support_days}, {support_hours} {support_timezone}."),
        CLOSER,
    ),
    "complaint_escalation": (
        SORRY,
        ("I've escalated your case to a {escalation_to} agent on our support team.",
         "I'm passing this to a {escalation_to} agent so someone can look at it personally.",
         "I'm handing your case to a {escalation_to} on our team right away."),
        ("They'll reply by email within {escalation_reply}.",
         "You'll hear back from them by email within {escalation_reply}."),
    ),
    "greeting": (
        ("Hi there!", "Hello!", "Hi!", "Hey, thanks for stopping by!"),
        ("Welcome to {store} support.", "You've reached {store} support.", "I'm the {store} support assistant."),
        ("How can I help you today?", "What can I do for you?", "What can I help you with today?"),
    ),
    "out_of_scope": (
        ("Sorry, that's outside what I can help with.", "I'm afraid I can't help with that one.",
         "That's not something I can answer, sorry!"),
        ("I'm here for {store} questions: orders, shipping, returns and products.",
         "I can only help with {store} orders, shipping, returns and products."),
        ("", "Is there anything store-related I can do for you?"),
    ),
    "abusive_user": (
        ("I'm sorry you're having a frustrating experience.",
         "I understand you're upset, and I'm sorry things have gone wrong.",
         "I hear your frustration, and I want to help."),
        ("", "Let's keep things respectful so I can help you as quickly as possible.",
         "I'm here to sort this out with you."),
        ("Could you tell me what's going on with your order?", "Can you share what happened so I can look into it?",
         "What can I help you fix today?"),
    ),
    # dialogue moves
    "clarify/vague": (
        ("Sure, what can I help you with?", "Of course! What do you need help with?",
         "Happy to help. What's going on?", "I'm here. What can I do for you?"),
    ),
    "clarify/product": (
        ("Of course! Which product are you asking about, and what would you like to know?",
         "Sure, which item is it, and what would you like to know about it?"),
    ),
    "clarify/warranty": (
        ("Sorry to hear that!", "Oh no, sorry about that.", ""),
        ("Did [it|they] stop working on [its|their] own, or [was it|were they] damaged in an accident, like a drop or a spill?",
         "Can I ask what happened: did [it|they] fail during normal use, or was there an accident such as a drop or a spill?"),
    ),
    "ask_order_number": (
        ("I can help with that. What's your order number?", "Sure! Could you share your order number?",
         "Happy to look into it. What's the order number?"),
    ),
    "closing": (
        ("You're welcome! Have a great day.", "Glad I could help!", "Anytime! Enjoy your day.",
         "You're welcome, happy shopping!", "My pleasure. Take care!"),
    ),
}  # fmt: skip

# Required facts of each answer key: names of FACTS / EXTRA_FACTS entries or of scene
# values ("tracking", "date", "price", "feature_key") plus literal words in quotes
# ('"shipped"'), each of which every alternative of the answer states verbatim.
REQUIRED: dict[str, tuple[str, ...]] = {
    "order_status/processing": ('"processing"',),
    "order_status/shipped": ('"shipped"', "tracking"),
    "order_status/delivered": ('"delivered"', "date"),
    "order_status/cancelled": ('"cancelled"',),
    "return": ("return_window",),
    "refund": ("refund_time",),
    "exchange": ("return_window",),
    "cancel_order/processing": ('"processing"', '"free"'),
    "cancel_order/shipped": ('"shipped"', "return_window"),
    "cancel_order/delivered": ('"delivered"', "return_window"),
    "cancel_order/cancelled": ('"already cancelled"',),
    "change_address/processing": ('"processing"',),
    "change_address/shipped": ('"shipped"',),
    "change_address/none": ('"processing"',),
    "shipping/standard_time": ("standard_shipping_time",),
    "shipping/cost": ("standard_shipping_fee",),
    "shipping/free": ("free_shipping_threshold",),
    "shipping/express": ("express_shipping_time", "express_shipping_fee"),
    "damaged_item": ("damaged_remedy",),
    "warranty/defect": ("warranty_period",),
    "warranty/accident": ("warranty_excludes",),
    "password_reset/forgot": ("password_link",),
    "password_reset/expired": ("password_link_expiry",),
    "payment_failure": ("payment_check",),
    "discount_code/not_working": ("discount_rule",),
    "discount_code/after_order": ("discount_when",),
    "product_question/price": ("price",),
    "product_question/feature": ("feature_key",),
    "product_question/warranty": ("warranty_period",),
    "store_hours/hours": ("support_hours",),
    "store_hours/weekend": ("support_days",),
    "store_hours/contact": ("support_email",),
    "complaint_escalation": ("escalation_to",),
    "greeting": (),
    "out_of_scope": (),
    "abusive_user": (),
}

SYSTEM_PROMPTS: tuple[str, ...] = (
    f"You are the customer support assistant for {STORE_NAME}, an online store. Answer accurately and politely.",
    f"You are a helpful support agent for {STORE_NAME}. Be concise and friendly.",
    f"You help {STORE_NAME} customers with orders, shipping, returns and products. Only state store policies you are sure of.",
)

# Flawed answers for preference pairs (facts right, tone wrong; or no content at all).
RUDE_PREFIX: tuple[str, ...] = ("Ugh, this is on our website.", "Did you even read the FAQ?",
                                "Look, I'll say this once.", "Honestly, this is basic stuff.", "Fine.")  # fmt: skip
RUDE_SUFFIX: tuple[str, ...] = ("Don't make me repeat it.", "Try reading next time.",
                                "Figure out the rest yourself.", "That's all.", "Next.")  # fmt: skip
VAGUE_ANSWERS: tuple[str, ...] = (
    "I'm not sure, it depends on a lot of things. Please check our website for details.",
    "That varies. You could try contacting us again later.",
    "Hmm, hard to say. Maybe look around the site?",
    "It depends on the situation. Is there anything else?",
    "I don't have that information right now.",
)

# --------------------------------------------------------------------------- raw-log noise

FIRST_NAMES: tuple[str, ...] = (
    "Maria", "James", "Wei", "Aisha", "Carlos", "Emma", "Liam", "Priya", "Noah", "Sofia",
    "Kenji", "Fatima", "Lucas", "Olivia", "Mateo", "Chloe", "Arjun", "Hannah", "Diego", "Grace",
    "Tomasz", "Amara", "Ethan", "Yuki", "Omar", "Leah", "Nikolai", "Zara", "Samuel", "Ines",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Lopez", "Smith", "Zhang", "Bello", "Garcia", "Johnson", "Murphy", "Patel", "Williams", "Rossi",
    "Tanaka", "Haddad", "Silva", "Brown", "Fernandez", "Martin", "Sharma", "Schmidt", "Torres", "Kim",
    "Nowak", "Okafor", "Davis", "Sato", "Hassan", "Cohen", "Ivanov", "Ahmed", "Wright", "Moreau",
)  # fmt: skip
# Reserved example domains (RFC 2606) plus made-up ones: no real mailbox is ever named.
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.example", "inbox.test")
STREETS: tuple[str, ...] = ("Maple Street", "Oak Avenue", "Willow Lane", "Cedar Road", "Elm Drive",
                            "Pine Court", "Lakeview Boulevard", "Sunset Way", "Hillcrest Road", "River Street")  # fmt: skip
CITIES: tuple[tuple[str, str, str], ...] = (  # (city, state, zip prefix)
    ("Springfield", "IL", "627"), ("Portland", "OR", "972"), ("Austin", "TX", "787"),
    ("Columbus", "OH", "432"), ("Denver", "CO", "802"), ("Raleigh", "NC", "276"),
    ("Madison", "WI", "537"), ("Tucson", "AZ", "857"),
)  # fmt: skip

# Wrappers that put an identifier into a user turn; `{v}` is the planted value.
PII_PHRASES: dict[str, tuple[str, ...]] = {
    "name": ("This is {v}.", "{v} here.", "My name is {v}.", "- {v}", "Regards, {v}"),
    "email": ("My email is {v}.", "Account email: {v}", "You can reach me at {v}.", "(registered under {v})"),
    "phone": ("Call me at {v}.", "My number is {v}.", "phone: {v}", "Text me on {v} if that's easier."),
    "card": ("The card is {v}.", "I used card {v}.", "card number {v}", "Tried {v} twice."),
    "address": ("My address is {v}.", "Please send it to {v}.", "I live at {v}.", "new address: {v}"),
    "order_number": ("Order number {v}.", "(order #{v})", "It's order #{v}.", "ref {v}"),
}

# Trailing dots, so a capital after them still reads right ("ok so... Where is it?").
NEAR_DUP_PREFIXES: tuple[str, ...] = ("ok so... ", "um... ", "so... ", "well... ", "uh... ")

# Non-English material: single lines appended to an English turn, and a few short chats.
NON_ENGLISH_LINES: tuple[str, ...] = (
    "¡Muchas gracias!", "Merci beaucoup pour votre aide.", "Vielen Dank für die schnelle Antwort.",
    "Grazie mille!", "Obrigado pela ajuda.", "Por favor, respondan pronto.", "C'est urgent, s'il vous plaît.",
)  # fmt: skip
NON_ENGLISH_GREETINGS: dict[str, tuple[str, ...]] = {
    "es": ("Hola,", "Buenos días,", "Buenas tardes,", "Hola, buenas."),
    "fr": ("Bonjour,", "Bonsoir,", "Salut,", "Bonjour à vous,"),
    "de": ("Hallo,", "Guten Tag,", "Guten Morgen,", "Hallo zusammen,"),
}
NON_ENGLISH_THANKS: dict[str, tuple[tuple[str, str], ...]] = {
    "es": (("Gracias.", "¡De nada! Que tenga un buen día."), ("Perfecto, gracias.", "¡Con gusto!")),
    "fr": (("Merci.", "Avec plaisir ! Bonne journée."), ("Parfait, merci.", "Je vous en prie !")),
    "de": (("Danke.", "Gern geschehen! Schönen Tag noch."), ("Super, danke.", "Sehr gerne!")),
}
# (language, intent, user questions, assistant answer)
NON_ENGLISH_CHATS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("es", "return", ("¿cómo puedo devolver un producto?", "quiero devolver algo que compré."),
     "Puede devolver artículos sin usar en su embalaje original dentro de 30 días desde la entrega. Inicie la devolución desde Mis pedidos."),
    ("es", "shipping", ("¿cuánto tarda el envío estándar?", "¿cuántos días tarda en llegar mi pedido?"),
     "El envío estándar tarda de 3 a 5 días hábiles y es gratis en pedidos de más de $50."),
    ("es", "store_hours", ("¿cuál es el horario de atención?", "¿a qué hora abren?"),
     "Atendemos de lunes a viernes, de 9am a 6pm (hora del Este)."),
    ("fr", "return", ("comment retourner un article ?", "je voudrais renvoyer ma commande."),
     "Vous pouvez retourner les articles non utilisés dans leur emballage d'origine sous 30 jours après la livraison."),
    ("fr", "refund", ("quand vais-je recevoir mon remboursement ?", "où en est mon remboursement ?"),
     "Le remboursement est versé sur votre moyen de paiement d'origine sous 5 à 7 jours ouvrés après réception du retour."),
    ("fr", "password_reset", ("j'ai oublié mon mot de passe.", "je n'arrive plus à me connecter."),
     "Cliquez sur « Forgot password » sur la page de connexion. Le lien expire après 1 heure."),
    ("de", "shipping", ("wie lange dauert der Expressversand?", "gibt es einen schnelleren Versand?"),
     "Der Expressversand dauert 1-2 Werktage und kostet $14.99."),
    ("de", "warranty", ("meine Kopfhörer funktionieren nicht mehr. Gibt es Garantie?", "ist Elektronik von der Garantie abgedeckt?"),
     "Elektronik hat 1 Jahr Garantie auf Defekte, aber nicht auf Unfallschäden."),
    ("de", "greeting", ("ist da jemand?", "wie geht es Ihnen?"),
     "Hallo! Willkommen beim Kundenservice von Larkspur Goods. Wie kann ich helfen?"),
)  # fmt: skip

# --------------------------------------------------------------------------- KB

# Each KB topic: titles, required sentence groups (one paraphrase of each is used and every
# paraphrase states the group's fact) and optional extra sentences. `KB_REQUIRED_FACTS`
# lists what every article of the topic states.
KB_TOPICS: dict[str, tuple[tuple[str, ...], tuple[Part, ...], Part]] = {
    "returns": (
        ("Return policy", "Returns", "How to return an item", "Returning something you bought"),
        (
            ("You can return items within {return_window} of delivery.",
             "Our return window is {return_window} from the delivery date.",
             "Items may be returned up to {return_window} after delivery."),
            ("Returned items must be unused and in original packaging.",
             "We accept {return_condition}.",
             "To qualify, the item has to be unused and still in its original packaging."),
        ),
        ("Start a return from Your Orders; a return label is emailed to you.",
         "Refunds go to your {refund_method} within {refund_time} after the return arrives.",
         "Gift recipients can return items too; the refund goes to the original buyer.",
         "Sale items follow the same return policy as everything else."),
    ),
    "refunds": (
        ("Refunds", "When will I get my refund?", "Refund timing", "How refunds work"),
        (
            ("Refunds are issued to your {refund_method}.", "We always refund the {refund_method} used for the order.",
             "Your money goes back to the {refund_method}."),
            ("The refund arrives within {refund_time} after your return reaches our warehouse.",
             "Expect the money within {refund_time} once the returned item arrives.",
             "Once we receive the return, refunds take {refund_time}."),
        ),
        ("You'll get an email when the refund is processed.",
         "Some banks show the refund as pending for a short time.",
         "Cancelled orders are refunded the same way."),
    ),
    "shipping": (
        ("Shipping options", "Shipping and delivery", "Shipping rates and times", "How long does shipping take?"),
        (
            ("Standard shipping takes {standard_shipping_time}.", "Standard orders arrive in {standard_shipping_time}.",
             "With standard shipping, expect delivery in {standard_shipping_time}."),
            ("Standard shipping is free on orders over {free_shipping_threshold}; otherwise it costs {standard_shipping_fee}.",
             "Orders over {free_shipping_threshold} ship free, and smaller orders pay {standard_shipping_fee}.",
             "We charge {standard_shipping_fee} for standard shipping, free on orders over {free_shipping_threshold}."),
            ("Express shipping takes {express_shipping_time} and costs {express_shipping_fee}.",
             "Need it sooner? Express shipping arrives in {express_shipping_time} for {express_shipping_fee}.",
             "Express orders cost {express_shipping_fee} and arrive in {express_shipping_time}."),
        ),
        ("You get a tracking number by email when your order ships.",
         "Choose your shipping speed at checkout.",
         "Business days are Monday through Friday, excluding holidays."),
    ),
    "cancellations": (
        ("Cancelling an order", "Order cancellations", "Can I cancel my order?"),
        (
            ("You can cancel for free while the order status is {cancel_status}.",
             "Orders can be cancelled free of charge as long as they are still {cancel_status}.",
             "While an order is {cancel_status}, cancelling is free."),
            ("Once an order has shipped it can't be cancelled; return it instead within {return_window} of delivery.",
             "After an order is shipped, cancelling is no longer possible, but you can return it within {return_window} of delivery."),
        ),
        ("Cancel from Your Orders by choosing Cancel order.",
         "Cancelled orders are refunded to your {refund_method} within {refund_time}."),
    ),
    "warranty": (
        ("Warranty", "Electronics warranty", "What our warranty covers"),
        (
            ("All {warranty_scope} come with a warranty of {warranty_period}.",
             "We cover {warranty_scope} for {warranty_period} from delivery.",
             "Every item in our {warranty_scope} range is covered by our warranty for {warranty_period}."),
            ("The warranty covers {warranty_covers}, not {warranty_excludes}.",
             "It protects against {warranty_covers} but does not cover {warranty_excludes}.",
             "Manufacturing {warranty_covers} are covered; {warranty_excludes} such as drops or spills is not."),
        ),
        ("To make a claim, contact support with your order details and a short description.",
         "We repair or replace covered items at no cost."),
    ),
    "support": (
        ("Contact us", "Customer support hours", "Getting in touch", "Support hours and contact"),
        (
            ("Our support team works {support_days}, {support_hours} {support_timezone}.",
             "Support is available {support_days} from {support_hours} {support_timezone}.",
             "You can reach a person {support_days}, {support_hours} {support_timezone}."),
            ("Email us anytime at {support_email}.", "Our email address is {support_email}.",
             "Write to {support_email} and we'll reply during business hours."),
        ),
        ("Messages sent on weekends are answered the next business day.",
         "Escalated cases get a reply from a human agent within {escalation_reply}."),
    ),
    "order_status": (
        ("Order statuses explained", "What does my order status mean?", "Tracking your order"),
        (
            ("Processing: we have your order and are preparing it; it has not shipped yet.",
             "An order marked processing is being prepared and has not left our warehouse."),
            ("Shipped: the order is on its way, and you get the carrier name and a tracking number.",
             "Once shipped, the order page shows the carrier and a tracking number."),
            ("Delivered: the carrier confirmed delivery, and the page shows the delivery date.",
             "Delivered means the parcel arrived; the delivery date is shown on the order."),
            ("Cancelled: the order was cancelled and will not ship.",
             "A cancelled order will not be shipped, and any payment is refunded."),
        ),
        ("You can see the status of every order under Your Orders.",
         "Tracking links usually start working a few hours after the order ships."),
    ),
    "password_reset": (
        ("Resetting your password", "Forgot your password?", "Account access"),
        (
            ('Click "{password_link}" on the sign-in page to get a reset link by email.',
             'Use the "{password_link}" link on the sign-in page and we email you a reset link.'),
            ("The reset link expires after {password_link_expiry}.", "Each reset link is valid for {password_link_expiry}."),
        ),
        ("Check your spam folder if the email doesn't arrive.",
         "If a link has expired, simply request a new one."),
    ),
    "payments": (
        ("Payment methods", "Why was my payment declined?", "Paying for your order"),
        (
            ("We accept {payment_methods}.", "You can pay with {payment_methods}."),
            ("Most declined payments happen when the {payment_check} doesn't match the card.",
             "If a payment is declined, check that the {payment_check} matches what your bank has on file."),
        ),
        ("Declined payments are never charged.", "Your bank can tell you why a charge was blocked."),
    ),
    "discount_codes": (
        ("Discount codes", "Using a promo code", "Coupons and discounts"),
        (
            ("Codes must be entered {discount_when}.", "Enter your code {discount_when}, before you pay."),
            ("You can use {discount_rule}.", "Only {discount_rule} is accepted."),
        ),
        ("Codes are case-sensitive.", "Expired codes can't be applied.",
         "Codes can't be added to an order after it's placed."),
    ),
    "damaged_items": (
        ("Damaged or broken items", "My item arrived damaged", "Damaged deliveries"),
        (
            ("If an item arrives damaged, send us a photo of the damage.",
             "Please share a photo of any damage you find when unpacking."),
            ("We'll send a {damaged_remedy} or a full refund.",
             "You can choose a {damaged_remedy} or a full refund."),
        ),
        ("Keep the packaging until the case is resolved.",
         "Report damage as soon as you can after delivery."),
    ),
    "exchanges": (
        ("Exchanges", "Exchanging an item", "Wrong size or color?"),
        (
            ("Exchanges follow the return window of {return_window} from delivery.",
             "You can exchange an item within {return_window} of delivery."),
            ("The item must be unused and in original packaging.", "Only {return_condition} can be exchanged."),
        ),
        ("Start an exchange from Your Orders and pick the new size or color.",
         "We ship the replacement once the original is on its way back."),
    ),
    "address_changes": (
        ("Changing your shipping address", "Wrong address on an order?", "Updating a delivery address"),
        (
            ("You can change the shipping address while the order is still {cancel_status}.",
             "Addresses can be edited as long as the order status is {cancel_status}."),
            ("Once an order has shipped, the address can't be changed, but the carrier may redirect it.",
             "After an order has shipped, only the carrier can redirect the parcel."),
        ),
        ("Edit the address under Your Orders.", "Double-check your address at checkout to avoid delays."),
    ),
}  # fmt: skip

KB_REQUIRED_FACTS: dict[str, tuple[str, ...]] = {
    "returns": (FACTS["return_window"], "original packaging", "unused"),
    "refunds": (FACTS["refund_method"], FACTS["refund_time"]),
    "shipping": (
        FACTS["standard_shipping_time"], FACTS["free_shipping_threshold"], FACTS["standard_shipping_fee"],
        FACTS["express_shipping_time"], FACTS["express_shipping_fee"],
    ),
    "cancellations": (FACTS["cancel_status"], "shipped", FACTS["return_window"]),
    "warranty": (FACTS["warranty_period"], FACTS["warranty_scope"], FACTS["warranty_covers"], FACTS["warranty_excludes"]),
    "support": (FACTS["support_days"], FACTS["support_hours"], SUPPORT_EMAIL),
    "order_status": (*ORDER_STATUSES, "tracking number", "carrier", "delivery date"),
    "password_reset": (FACTS["password_link"], FACTS["password_link_expiry"]),
    "payments": (EXTRA_FACTS["payment_methods"], EXTRA_FACTS["payment_check"]),
    "discount_codes": (EXTRA_FACTS["discount_when"], EXTRA_FACTS["discount_rule"]),
    "damaged_items": ("photo", EXTRA_FACTS["damaged_remedy"]),
    "exchanges": (FACTS["return_window"], "original packaging"),
    "address_changes": (FACTS["cancel_status"], "shipped"),
}  # fmt: skip

PRODUCT_PAGE: tuple[tuple[str, ...], tuple[Part, ...], Part] = (
    ("{product}", "{product} | {store}", "Product: {product}", "{product} ({sku})"),
    (
        ("Price: {price}.", "The {product} [sells|sell] for {price}.", "{product}: {price}."),
        ("SKU: {sku}.", "Item number {sku}.", "Product code {sku}."),
        ("Category: {category}.", "Part of our {category} range.", "Find [it|them] in our {category} section."),
        ("[It offers|They offer] {feature}.", "Highlights: {feature}.", "Key feature: {feature}."),
    ),
    ("Ships in {standard_shipping_time} with standard shipping.",
     "Returnable within {return_window} of delivery if unused and in original packaging.",
     "Free standard shipping on orders over {free_shipping_threshold}."),
)  # fmt: skip
ELECTRONICS_WARRANTY: Part = (
    "Covered by our warranty for {warranty_period} against defects (accidental damage is not covered).",
    "Includes a warranty of {warranty_period} that covers defects but not accidental damage.",
)

FAQ_TITLES: tuple[str, ...] = ("Frequently asked questions", "FAQ", "Common questions", "Quick answers")

# (topic, question paraphrases, answer paraphrases) for FAQ articles.
FAQ_ITEMS: tuple[tuple[str, Part, Part], ...] = (
    ("returns", ("How long do I have to return something?", "What is the return window?"),
     ("You have {return_window} from delivery to return unused items in original packaging.",)),
    ("refunds", ("When do I get my refund?", "How long do refunds take?"),
     ("Refunds reach your {refund_method} within {refund_time} after the return arrives.",)),
    ("shipping", ("How long does standard shipping take?", "When will my order arrive?"),
     ("Standard shipping takes {standard_shipping_time}; it's free on orders over {free_shipping_threshold}, otherwise {standard_shipping_fee}.",)),
    ("shipping", ("Do you offer express shipping?", "Can I get my order faster?"),
     ("Yes: express shipping takes {express_shipping_time} and costs {express_shipping_fee}.",)),
    ("cancellations", ("Can I cancel my order?", "How do I cancel?"),
     ("Cancelling is free while the order is {cancel_status}; once it has shipped, return it instead.",)),
    ("warranty", ("Is there a warranty?", "What does the warranty cover?"),
     ("All {warranty_scope} have a warranty of {warranty_period} covering {warranty_covers}, not {warranty_excludes}.",)),
    ("support", ("When is support open?", "How do I contact you?"),
     ("We're available {support_days}, {support_hours} {support_timezone}, and at {support_email}.",)),
    ("password_reset", ("I forgot my password. What now?", "How do I reset my password?"),
     ('Use "{password_link}" on the sign-in page; the link expires after {password_link_expiry}.',)),
    ("payments", ("Which payment methods do you accept?", "Why was my card declined?"),
     ("We accept {payment_methods}; declines usually mean the {payment_check} doesn't match.",)),
    ("discount_codes", ("Can I use more than one code?", "How do discount codes work?"),
     ("Enter codes {discount_when}; you can use {discount_rule}.",)),
    ("damaged_items", ("My item arrived damaged. What should I do?", "What if something arrives broken?"),
     ("Send us a photo and we'll arrange a {damaged_remedy} or a full refund.",)),
)  # fmt: skip

# --------------------------------------------------------------------------- held out

HELDOUT_SHARE = 0.22

_SLOT = re.compile(r"\{(\w+)\}")
# A slot, or a `[singular|plural]` choice.
_PIECE = re.compile(r"\{(\w+)\}|\[([^\[\]]*)\]")


def template_pattern(template: str) -> re.Pattern[str]:
    """A case-insensitive regex that finds text rendered from `template`, whatever fills its slots."""
    regex, at = [], 0
    for m in _PIECE.finditer(template):
        regex.append(re.escape(template[at : m.start()]))
        if m.group(1) is not None:
            regex.append(r".+?")
        else:
            regex.append("(?:" + "|".join(re.escape(a) for a in m.group(2).split("|")) + ")")
        at = m.end()
    regex.append(re.escape(template[at:]))
    regex = [r for r in regex if r]
    # A slot at either end only says "some text is there": a lookaround finds the same
    # texts without trying every possible start (a leading `.+?` is quadratic per line).
    if len(regex) > 1 and regex[0] == r".+?":
        regex[0] = r"(?<=.)"
    if len(regex) > 1 and regex[-1] == r".+?":
        regex[-1] = r"(?=.)"
    # Whole words at the ends: "ok {thanks}" must not match inside "look around".
    text = agree(template, False)
    start = r"\b" if not template.startswith("{") and re.match(r"\w", text) else ""
    end = r"\b" if not template.endswith("}") and re.search(r"\w$", text) else ""
    return re.compile(start + "".join(regex) + end, re.IGNORECASE)


def _whole(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)


def _fixed_texts() -> tuple[str, ...]:
    """Every fixed text the generator writes besides user templates and lexicon items.

    Facts are filled in, scene slots ({product}, {order_no}, ...) become a NUL that no
    word crosses, and `[singular|plural]` choices are spelled both ways. (The order
    record's field labels in synth.py, "Status:", "Carrier:", ..., are no lexicon item.)
    """
    texts: list[str] = [alt for parts in ANSWERS.values() for part in parts for alt in part]
    for titles, groups, extras in (*KB_TOPICS.values(), PRODUCT_PAGE):
        texts += [*titles, *(alt for group in groups for alt in group), *extras]
    texts += [x for _, questions, answers in FAQ_ITEMS for x in (*questions, *answers)]
    texts += [*ELECTRONICS_WARRANTY, *FAQ_TITLES, *SYSTEM_PROMPTS, *RUDE_PREFIX, *RUDE_SUFFIX, *VAGUE_ANSWERS]
    texts += [*FACTS.values(), *EXTRA_FACTS.values(), *WRONG_FACTS.values(), STORE_NAME, STORE_DOMAIN]
    texts += [x for p in PRODUCTS for x in (p.name, p.category, p.price, p.sku, p.feature)]
    texts += [*ORDER_STATUSES, *MONTHS, *(carrier for carrier, _ in CARRIERS)]
    # Noise and identifiers planted into training user turns.
    texts += [x for phrases in PII_PHRASES.values() for x in phrases]
    texts += [*NEAR_DUP_PREFIXES, *NON_ENGLISH_LINES, *(x for g in NON_ENGLISH_GREETINGS.values() for x in g)]
    texts += [x for pairs in NON_ENGLISH_THANKS.values() for pair in pairs for x in pair]
    texts += [x for _, _, questions, answer in NON_ENGLISH_CHATS for x in (*questions, answer)]
    texts += [*FIRST_NAMES, *LAST_NAMES, *STREETS, *(city for city, _, _ in CITIES), *EMAIL_DOMAINS]
    values = {**FACTS, **EXTRA_FACTS, "store": STORE_NAME}
    filled = [_SLOT.sub(lambda m: values.get(m.group(1), "\x00"), t) for t in texts]
    return tuple(agree(t, plural) for t in filled for plural in (False, True))


def _template_texts(templates: Sequence[str]) -> list[str]:
    return [agree(t, plural) for t in templates for plural in (False, True)]


_ALL_NICKNAMES: tuple[str, ...] = tuple(n for p in PRODUCTS for n in p.nicknames)
_FIXED_LOWER = "\n".join(_fixed_texts()).lower()
_ALL_TEMPLATES: tuple[str, ...] = tuple(t for pool in USER_TEMPLATES.values() for t in pool)
# Lower-cased once: the checks below match case-insensitively and test substrings first.
_TEMPLATE_LINES: tuple[tuple[str, str], ...] = tuple(
    (t, text.lower()) for t in _ALL_TEMPLATES for text in _template_texts([t])
)
_TEMPLATE_WORDS = "\n".join(_SLOT.sub("\x00", text) for _, text in _TEMPLATE_LINES)
_ALL_ITEMS = "\n".join([*(x for pool in LEXICON.values() for x in pool), *_ALL_NICKNAMES]).lower()


def _phrase_eligible(item: str) -> bool:
    """A lexicon item or nickname may be held out only if no other text ever contains it."""
    found, lower = _whole(item), item.lower()
    # A substring test first keeps this import-time check fast; the item's own line in
    # _ALL_ITEMS is the one expected match there.
    fixed = any(lower in text and found.search(text) for text in (_FIXED_LOWER, _TEMPLATE_WORDS))
    return not fixed and (_ALL_ITEMS.count(lower) == 1 or len(found.findall(_ALL_ITEMS)) == 1)


def _template_eligible(template: str) -> bool:
    """A template may be held out only if its pattern finds nothing in fixed text or other templates."""
    found = template_pattern(template)
    others = "\n".join(text for t, text in _TEMPLATE_LINES if t != template)
    # The pattern can only match where its longest literal piece occurs: a cheap test first.
    literal = max(_PIECE.split(template)[::3], key=len).lower()
    return not any(literal in text and found.search(text) for text in (_FIXED_LOWER, others, _ALL_ITEMS))


def _rank(text: str) -> str:
    # SHA-256 rather than hash(): Python salts str hashes per process.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_heldout(
    items: Sequence[str], *, keep_first: bool = True, eligible: Callable[[str], bool] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split items into (kept, held_out): about HELDOUT_SHARE of them, chosen by content hash.

    Only `eligible` items (default: all) are ever held out; if too few are, fewer are.
    """
    fixed = tuple(items[:1]) if keep_first else ()
    rest = list(items[len(fixed) :])
    count = round(len(rest) * HELDOUT_SHARE)
    if len(rest) >= 2:
        count = max(count, 1)
    candidates = [x for x in rest if eligible is None or eligible(x)]
    held = sorted(candidates, key=_rank)[:count]
    kept = tuple(x for x in items if x not in held)
    return kept, tuple(x for x in items if x in held)


LEXICON_SPLIT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    k: split_heldout(v, eligible=_phrase_eligible) for k, v in LEXICON.items()
}
TEMPLATE_SPLIT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    k: split_heldout(v, eligible=_template_eligible) for k, v in USER_TEMPLATES.items()
}
# Nicknames are held out across the whole catalog; product names are never held out.
HELDOUT_NICKNAMES: tuple[str, ...] = split_heldout(_ALL_NICKNAMES, keep_first=False, eligible=_phrase_eligible)[1]

# Templates whose held-out status does not matter: they only carry planted identifiers,
# which never occur in the clean test splits.
_NOT_IN_TESTS = ("order_no_reply",)


def heldout_phrases() -> tuple[str, ...]:
    """Every held-out lexicon item and product nickname (match as whole words, any case)."""
    words = [x for _, held in LEXICON_SPLIT.values() for x in held]
    return tuple(words) + HELDOUT_NICKNAMES


def heldout_templates() -> tuple[str, ...]:
    """Every held-out user template (see `template_pattern` to find one in text)."""
    return tuple(t for k, (_, held) in TEMPLATE_SPLIT.items() if k not in _NOT_IN_TESTS for t in held)
