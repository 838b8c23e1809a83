"""What the realistic conversations talk about (read by bench/conversations_gen.py).

Over 400 lines: this is data, not logic — the story arcs, the filler and the small talk the
generator draws from, kept in one place so that a reader can judge how hard the set is.

An arc is a story told over one or more sessions ("stages"). Each stage is a list of turns
(role, text); a text may be a list of alternatives. Roles: "o" the owner, "s" Steward, "a" and
"b" two other people in the owner's group chat (an arc with `group=True` is told there).
Questions name their evidence as (stage, turn) pairs and are worded differently from it on
purpose: a question about "the cat we adopted" has evidence that says "picked up a grey tabby
from the shelter". Question types: single (one fact), temporal (when / in a month: the answer
or the filter is a date), multi (several evidence turns, often in different sessions),
inference (the evidence implies the answer without stating it). `{month:S:T}` in a question is
the month of stage S, turn T, filled in by the generator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCS", "CLOSINGS", "GREETINGS", "SMALL_TALK", "STEWARD_ACKS", "STEWARD_GREETINGS"]

Turn = tuple[str, Any]

ARCS: list[dict[str, Any]] = [
    {
        "key": "pet",
        "slots": {
            "pet": ["Miso", "Pickle", "Biscuit", "Juniper", "Pepper", "Noodle", "Olive"],
            "animal": [
                {"desc": "grey tabby from the shelter", "kind": "cat", "young": "kitten"},
                {"desc": "scruffy terrier mix from the rescue", "kind": "dog", "young": "puppy"},
                {"desc": "ginger cat the rescue centre had", "kind": "cat", "young": "kitten"},
                {"desc": "lurcher from the dogs' home", "kind": "dog", "young": "puppy"},
            ],
        },
        "stages": [
            [
                (
                    "o",
                    [
                        "big news, we brought home a {animal[desc]} today! calling her {pet}",
                        "so... we went to look and came back with a {animal[desc]}. {pet} is "
                        "her name",
                    ],
                ),
                ("s", "That's wonderful! How is {pet} settling in?"),
                ("o", ["hiding under the bed mostly", "she's exploring every corner lol"]),
            ],
            [
                ("o", "{pet} had her jabs at the vet this morning, she was so brave"),
                ("s", "Glad it went well. Do you want a reminder for the booster?"),
                ("o", "yes please, in a year"),
            ],
        ],
        "questions": [
            (
                "single",
                ["What is my pet called?", "What name did we give the animal we adopted?"],
                [(0, 0)],
            ),
            ("single", ["What kind of animal do I have at home?"], [(0, 0)]),
            (
                "temporal",
                ["When did the new pet join the household?", "When did we adopt {pet}?"],
                [(0, 0)],
            ),
            ("temporal", ["When was {pet}'s vaccination appointment?"], [(1, 0)]),
            (
                "inference",
                ["Do I have to think about a pet sitter when I travel?", "Am I an animal owner?"],
                [(0, 0)],
            ),
            ("multi", ["Where did {pet} come from and has she been vaccinated?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "move",
        "slots": {
            "old": ["Leeds", "Manchester", "Glasgow", "Lyon", "Utrecht", "Porto", "Cork"],
            "new": [
                "Bristol",
                "Edinburgh",
                "Lisbon",
                "Copenhagen",
                "Vienna",
                "Bologna",
                "Valencia",
            ],
            "area": [
                "near the harbour",
                "by the big park",
                "in the old town",
                "five minutes from the station",
                "up on the hill",
            ],
        },
        "stages": [
            [
                (
                    "o",
                    [
                        "the trams here in {old} are a nightmare on mondays",
                        "ugh, {old} in the rain again, classic",
                    ],
                ),
                (
                    "s",
                    [
                        "Sounds rough. Do you want me to check the tram disruptions in the "
                        "morning?",
                        "Hang in there! Anything I can do?",
                    ],
                ),
                ("o", "nah just moaning"),
            ],
            [
                (
                    "o",
                    "ok it's official, we signed the lease. we're leaving {old} for {new} "
                    "at the end of next month",
                ),
                ("s", "Big step! Want me to make a checklist for the move?"),
                ("o", "yes, utilities, post redirect, that kind of stuff"),
                ("s", "Done — I'll put together the list and remind you a week before."),
            ],
            [
                (
                    "o",
                    [
                        "first night in the new flat! boxes everywhere but the view is great",
                        "we're in! sleeping on a mattress on the floor but the flat is {area}",
                    ],
                ),
                ("s", "Congratulations on the move! How does it feel?"),
                ("o", "surreal. the flat is {area}"),
            ],
        ],
        "questions": [
            (
                "single",
                ["Which city do I live in now?", "Where am I based these days?"],
                [(1, 0), (2, 0)],
            ),
            (
                "single",
                ["Where did I live before the move?", "What city did I leave?"],
                [(0, 0), (1, 0)],
            ),
            ("temporal", ["When did I sign the rental agreement?"], [(1, 0)]),
            ("temporal", ["When did I spend my first night in the new place?"], [(2, 0)]),
            (
                "multi",
                [
                    "Where is my new home and where exactly in the city is it?",
                    "Which city did I relocate to, and what is the neighbourhood like?",
                ],
                [(1, 0), (2, 2)],
            ),
            ("inference", ["Did I need a new address for my post recently?"], [(1, 2)]),
            ("temporal", ["What did I tell you about moving in {month:1:0}?"], [(1, 0)]),
        ],
    },
    {
        "key": "job",
        "slots": {
            "oldco": [
                "Halden Logistics",
                "Brightwater Insurance",
                "Kestrel Print",
                "Norbury Foods",
                "Axton Civil",
            ],
            "newco": [
                "Fernhill Studio",
                "Copperleaf Health",
                "Tidewell Energy",
                "Lumen Maps",
                "Quayside Games",
            ],
            "role": [
                "product designer",
                "data analyst",
                "project lead",
                "backend developer",
                "UX researcher",
            ],
            "boss": ["Ingrid", "Kofi", "Beatriz", "Malcolm", "Yuki"],
        },
        "stages": [
            [
                ("o", "another pointless 2 hour meeting at {oldco}. I'm so done with this place"),
                ("s", "That sounds draining. Are you thinking about looking around?"),
                ("o", "honestly yes"),
            ],
            [
                ("o", "they called!! {newco} want me as {role}"),
                ("s", "Congratulations! Are you going to accept?"),
                ("o", "already said yes. handing in my notice tomorrow"),
            ],
            [
                ("o", "day one done. new laptop, new badge, everyone is super friendly"),
                ("s", "Great start! How was the team?"),
                ("o", "small team, 6 people, my manager is called {boss}"),
            ],
        ],
        "questions": [
            ("single", ["Where do I work now?", "Who is my current employer?"], [(1, 0)]),
            (
                "single",
                ["What is my job title at the new place?", "What position was I offered?"],
                [(1, 0)],
            ),
            (
                "single",
                ["Which company did I quit?", "Where was I unhappy at work before?"],
                [(0, 0)],
            ),
            ("temporal", ["When did I get the job offer?"], [(1, 0)]),
            ("temporal", ["When was my first day in the new role?"], [(2, 0)]),
            ("multi", ["Which employer did I leave, and which one did I join?"], [(0, 0), (1, 0)]),
            ("single", ["Who is my boss now?", "What's my new manager's name?"], [(2, 2)]),
            ("inference", ["Did I resign from a job this year?"], [(1, 2)]),
        ],
    },
    {
        "key": "roof",
        "slots": {
            "cost": ["2,400", "1,850", "3,100", "960", "2,750"],
            "roofer": ["Dale", "Marek", "Sunny", "Fergus", "Aled"],
        },
        "stages": [
            [
                ("o", "there's water dripping in the attic again. bucket is half full"),
                ("s", "Oh no. Do you want me to find a roofer nearby?"),
                ("o", "my neighbour recommends a guy called {roofer}, I'll call him"),
            ],
            [
                (
                    "o",
                    "{roofer} came round, says three tiles cracked and the flashing is gone. "
                    "quote is £{cost}",
                ),
                ("s", "That's a fair amount. Want me to note it down?"),
                ("o", "yes, and he can start next week"),
            ],
            [
                ("o", "no more drip in the loft 🙌 {roofer} finished today"),
                ("s", "Brilliant, glad that's sorted."),
            ],
        ],
        "questions": [
            (
                "single",
                [
                    "How much was the roof repair going to cost?",
                    "What price did the roofer give me?",
                ],
                [(1, 0)],
            ),
            ("single", ["Who fixed the leak in the roof?"], [(0, 2), (1, 0)]),
            (
                "temporal",
                ["When was the roof fixed?", "When was the leak repair finished?"],
                [(2, 0)],
            ),
            ("temporal", ["What did I tell you about the roof in {month:1:0}?"], [(1, 0)]),
            ("multi", ["What was wrong with the roof and is the work done?"], [(1, 0), (2, 0)]),
            ("inference", ["Do I own or rent a house with an attic?"], [(0, 0)]),
        ],
    },
    {
        "key": "recipe",
        "slots": {
            "cook": ["Priya", "Tomás", "Gran", "Aunt Rosa", "Yusuf"],
            "dish": [
                {
                    "name": "mango sticky rice",
                    "parts": "coconut milk, glutinous rice, palm sugar and a pinch of salt",
                },
                {
                    "name": "lentil dahl",
                    "parts": "red lentils, turmeric, cumin seeds, garlic and a tin of tomatoes",
                },
                {
                    "name": "banana bread",
                    "parts": "three black bananas, brown sugar, "
                    "melted butter, cinnamon and walnuts",
                },
                {
                    "name": "shakshuka",
                    "parts": "peppers, onion, smoked paprika, tomatoes and four eggs",
                },
            ],
        },
        "stages": [
            [
                ("o", "{cook} made the most amazing {dish[name]} last night"),
                ("s", "Yum! Did you get the recipe?"),
                ("o", "wanna hear it?"),
                ("s", "Sure, I'll keep it for you."),
                ("o", "{dish[parts]}. that's it basically"),
            ],
        ],
        "questions": [
            (
                "single",
                [
                    "What's in {cook}'s {dish[name]}?",
                    "What ingredients do I need for the dessert {cook} cooked?",
                ],
                [(0, 4)],
            ),
            ("multi", ["Who cooked the {dish[name]} and what goes into it?"], [(0, 0), (0, 4)]),
            ("single", ["What did {cook} cook that I loved?"], [(0, 0)]),
            ("temporal", ["When did {cook} make that dinner I raved about?"], [(0, 0)]),
        ],
    },
    {
        "key": "allergy",
        "slots": {
            "drug": ["penicillin", "amoxicillin", "ibuprofen", "codeine"],
            "reaction": ["came out in hives", "my lips swelled up", "got a nasty rash"],
        },
        "stages": [
            [
                ("o", "doctor says I'm allergic to {drug}. {reaction} after the last course"),
                ("s", "Thanks for telling me — I'll remember that. Anything else they said?"),
                ("o", "just to carry the card in my wallet"),
            ],
        ],
        "questions": [
            (
                "single",
                ["Which medicine am I allergic to?", "What medication should I never take?"],
                [(0, 0)],
            ),
            (
                "inference",
                ["Is there anything I should tell a pharmacist before they give me pills?"],
                [(0, 0)],
            ),
            ("single", ["What happened when I had a bad reaction to medication?"], [(0, 0)]),
        ],
    },
    {
        "key": "course",
        "slots": {
            "course": [
                "evening pottery class",
                "beginners' Spanish course",
                "life drawing class",
                "sourdough workshop",
                "first aid course",
                "woodworking course",
            ],
            "place": [
                "community centre",
                "adult college",
                "library annex",
                "arts centre on Mill Lane",
            ],
        },
        "stages": [
            [
                ("o", "signed up for a {course} at the {place}! 8 weeks, thursdays"),
                ("s", "Exciting! Shall I block Thursday evenings in your calendar?"),
                ("o", "yes please"),
            ],
            [
                ("o", "week 3 of the {course} and I'm finally getting the hang of it"),
                ("s", "Nice progress!"),
            ],
        ],
        "questions": [
            (
                "single",
                ["What did I enrol in at the {place}?", "What class am I taking?"],
                [(0, 0)],
            ),
            (
                "temporal",
                [
                    "What course did I sign up for in {month:0:0}?",
                    "When did I register for the class?",
                ],
                [(0, 0)],
            ),
            ("single", ["Which weekday is my class on?"], [(0, 0), (0, 1)]),
            ("multi", ["What class did I join and how is it going?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "trip",
        "slots": {
            "place": [
                "Kyoto",
                "the Dolomites",
                "Crete",
                "Marrakech",
                "Iceland",
                "the Scottish Highlands",
                "Sicily",
            ],
            "photo": [
                "a steep path between pine trees with a lake far below",
                "a white chapel with a blue dome against the sea",
                "a narrow alley of red lanterns at dusk",
                "a glacier lagoon with floating chunks of ice",
                "a market stall piled with spices in cones",
            ],
            "days": ["ten days", "a week", "five days", "two weeks"],
        },
        "stages": [
            [
                ("o", "booked it! {days} in {place} in the spring"),
                ("s", "How exciting! Want me to keep an eye on the weather nearer the time?"),
                ("o", "yes!"),
            ],
            [
                ("o", "[photo: {photo}] look where we are"),
                ("s", "Stunning! Having a good time?"),
                ("o", "the best. legs are destroyed though"),
            ],
        ],
        "questions": [
            ("single", ["Where did I go on holiday?", "Which destination did I book?"], [(0, 0)]),
            (
                "single",
                [
                    "What was in the picture I sent from my trip?",
                    "What did the holiday photo show?",
                ],
                [(1, 0)],
            ),
            ("single", ["How long was my holiday?"], [(0, 0)]),
            ("temporal", ["When did I send you the holiday picture?"], [(1, 0)]),
            (
                "multi",
                ["Where did I travel and what did the photo I sent from there show?"],
                [(0, 0), (1, 0)],
            ),
        ],
    },
    {
        "key": "birthday",
        "slots": {
            "who": ["my sister", "my dad", "my brother", "my mum", "my best friend"],
            "name": ["Hannah", "Robert", "Callum", "Irene", "Jo"],
            "gift": [
                "a record player",
                "a fancy coffee grinder",
                "climbing shoes",
                "a watercolour set",
                "a cookbook signed by the author",
            ],
            "day": ["14 March", "2 June", "23 August", "9 November", "30 April"],
        },
        "stages": [
            [
                ("o", "{name}'s birthday is {day}, don't let me forget. {name} is {who}"),
                ("s", "Noted! I'll remind you a week before."),
            ],
            [
                ("o", "got {name} {gift}, think it'll be a hit"),
                ("s", "Great choice!"),
                ("o", "fingers crossed"),
            ],
        ],
        "questions": [
            ("single", ["When is {name}'s birthday?"], [(0, 0)]),
            ("single", ["What present did I buy for {name}?"], [(1, 0)]),
            ("multi", ["Whose birthday did I buy {gift} for, and when is it?"], [(0, 0), (1, 0)]),
            ("inference", ["Who is {name} to me?"], [(0, 0)]),
        ],
    },
    {
        "key": "running",
        "slots": {
            "race": ["half marathon", "10k", "park run series", "trail race"],
            "time": ["1:52", "48 minutes", "2:05", "54 minutes"],
            "shoe": ["Pegasus", "Ghost", "Cloudflow", "Novablast"],
        },
        "stages": [
            [
                ("o", "my knee is complaining after every run lately"),
                ("s", "Might be worth seeing a physio. Shall I look for one?"),
                ("o", "maybe new trainers first. getting the {shoe}"),
            ],
            [
                ("o", "entered the {race}! no backing out now"),
                ("s", "Go you! When is it?"),
                ("o", "in 9 weeks. training plan starts monday"),
            ],
            [
                ("o", "FINISHED. {time}. can't feel my legs"),
                ("s", "Amazing, congratulations!"),
            ],
        ],
        "questions": [
            ("single", ["What race did I enter?"], [(1, 0)]),
            (
                "single",
                ["What was my finishing time?", "How fast did I complete the race?"],
                [(2, 0)],
            ),
            ("single", ["Which running shoes did I buy?"], [(0, 2)]),
            ("temporal", ["When did I complete the race?"], [(2, 0)]),
            (
                "multi",
                ["Which event did I train for and what time did I do it in?"],
                [(1, 0), (2, 0)],
            ),
            ("inference", ["Did I have a sports injury worry this year?"], [(0, 0)]),
        ],
    },
    {
        "key": "car",
        "slots": {
            "car": [
                "2015 Skoda Octavia",
                "little red Fiat Panda",
                "old Volvo estate",
                "second-hand Toyota Yaris",
            ],
            "garage": ["Kwik Motors", "Ridgeway Garage", "Bev's Autos"],
            "fault": ["the clutch", "the alternator", "a brake caliper"],
        },
        "stages": [
            [
                ("o", "the {car} is making a grinding noise when I change gear"),
                ("s", "That doesn't sound great. Want me to find a garage?"),
                ("o", "I'll take it to {garage}, they did the MOT"),
            ],
            [
                ("o", "{garage} says it's {fault}. car's off the road till friday"),
                ("s", "Annoying! Do you need me to sort a lift or a rental?"),
                ("o", "nah I'll cycle"),
            ],
        ],
        "questions": [
            ("single", ["What car do I drive?", "What vehicle do I own?"], [(0, 0)]),
            ("single", ["What was wrong with my car?"], [(1, 0)]),
            ("single", ["Which mechanic do I use?"], [(0, 2), (1, 0)]),
            (
                "multi",
                ["What noise did my car make and what did the mechanic find?"],
                [(0, 0), (1, 0)],
            ),
            ("temporal", ["When was my car in the garage?"], [(1, 0)]),
        ],
    },
    {
        "key": "book",
        "slots": {
            "book": [
                "The Overstory",
                "Piranesi",
                "Klara and the Sun",
                "Middlemarch",
                "A Little Life",
                "Project Hail Mary",
            ],
            "club": ["Tuesday", "first Sunday", "last Friday"],
        },
        "stages": [
            [
                ("o", "book club picked {book} for next month, has anyone told you it's 600 pages"),
                ("s", "Ha, better start soon! Want a reading schedule?"),
                ("o", "go on then, 20 pages a day"),
            ],
            [
                ("o", "finished {book} on the train, cried a bit not gonna lie"),
                ("s", "That good? What did you think of the ending?"),
                ("o", "perfect, but so sad"),
            ],
        ],
        "questions": [
            (
                "single",
                [
                    "Which novel is my reading group doing?",
                    "What are we reading for the book club?",
                ],
                [(0, 0)],
            ),
            ("single", ["Which book made me emotional?"], [(1, 0)]),
            ("temporal", ["When did I finish the book club novel?"], [(1, 0)]),
            ("inference", ["Am I part of a reading group?"], [(0, 0)]),
        ],
    },
    {
        "key": "plants",
        "slots": {
            "plant": ["monstera", "fiddle leaf fig", "olive tree", "peace lily"],
            "issue": ["yellow leaves", "brown crispy edges", "tiny flies in the soil"],
        },
        "stages": [
            [
                ("o", "[photo: a {plant} in a terracotta pot with {issue}] what is going on here"),
                (
                    "s",
                    "It might be overwatering. Let the top few centimetres of soil dry out "
                    "between waterings.",
                ),
                ("o", "ahh I've been drowning it"),
            ],
        ],
        "questions": [
            (
                "single",
                ["Which houseplant was struggling?", "What plant did I send you a picture of?"],
                [(0, 0)],
            ),
            ("single", ["What advice did you give me about my sick plant?"], [(0, 1)]),
            ("multi", ["What was wrong with my plant and what did you suggest?"], [(0, 0), (0, 1)]),
        ],
    },
    {
        "key": "dentist",
        "slots": {
            "dentist": ["Dr Okafor", "Dr Lindqvist", "Dr Mehta", "Dr Byrne"],
            "time": ["9:20", "14:45", "11:10", "16:30"],
        },
        "stages": [
            [
                ("o", "tooth is killing me. got an emergency slot with {dentist} at {time}"),
                ("s", "Ouch, good that you got in quickly. I'll remind you 30 minutes before."),
            ],
            [
                ("o", "root canal. numb face. never again"),
                ("s", "Poor you! Take it easy today."),
                ("o", "soup for dinner"),
            ],
        ],
        "questions": [
            ("single", ["Who is my dentist?", "Which dentist treated my tooth?"], [(0, 0)]),
            ("single", ["What treatment did I have on my tooth?"], [(1, 0)]),
            (
                "temporal",
                ["When did I have the root canal?", "When was my emergency dental appointment?"],
                [(0, 0), (1, 0)],
            ),
            ("multi", ["Which dentist did I see and what did they do?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "flatmate",
        "group": True,
        "slots": {
            "chore": ["bins", "bathroom", "hoovering", "recycling"],
            "day": ["Sunday", "Wednesday", "Saturday morning"],
        },
        "stages": [
            [
                ("a", "who's on {chore} this week? it's getting grim"),
                ("b", "not me, I did it last week"),
                ("o", "ok fine I'll do it. can we do a rota?"),
                (
                    "s",
                    "I can keep a rota: {a} this week, then {b}, then {owner}. Rotate every {day}?",
                ),
                ("a", "perfect"),
            ],
        ],
        "questions": [
            (
                "single",
                ["Which chore did we set a rota for?", "What household job do we take turns on?"],
                [(0, 0), (0, 3)],
            ),
            ("single", ["When does our household rota change over?"], [(0, 3)]),
            ("inference", ["Do I share my home with other people?"], [(0, 0), (0, 3)]),
        ],
    },
    {
        "key": "a_news",
        "group": True,
        "slots": {
            "thing": [
                {"what": "I passed my driving test", "q": "pass", "topic": "driving test"},
                {
                    "what": "I got into the master's programme in Delft",
                    "q": "study",
                    "topic": "master's programme",
                },
                {"what": "we're expecting a baby in October", "q": "baby", "topic": "baby"},
                {"what": "I'm starting at the bakery on Monday", "q": "job", "topic": "bakery"},
            ]
        },
        "stages": [
            [
                ("a", "ok everyone sit down. {thing[what]}!!"),
                ("b", "WHAT. amazing"),
                ("o", "congrats {a}!! 🎉"),
                ("s", "Congratulations, {a}!"),
            ],
        ],
        "questions": [
            (
                "single",
                ["What big news did {a} share in the group?", "What did {a} announce?"],
                [(0, 0)],
            ),
            ("temporal", ["When did {a} tell us about the {thing[topic]}?"], [(0, 0)]),
        ],
    },
    {
        "key": "b_sick",
        "group": True,
        "slots": {"ill": ["tonsillitis", "a chest infection", "covid", "a sprained ankle"]},
        "stages": [
            [
                ("b", "can't make it saturday sorry, I've got {ill}"),
                ("o", "oh no, get well soon!"),
                ("a", "rest up"),
                ("b", "thanks guys x"),
            ],
        ],
        "questions": [
            ("single", ["Why did {b} cancel on Saturday?", "What was {b} ill with?"], [(0, 0)]),
            ("inference", ["Was {b} unwell at some point?"], [(0, 0)]),
        ],
    },
    {
        "key": "diet",
        "slots": {
            "diet": ["vegetarian", "vegan", "pescatarian"],
            "miss": ["bacon sandwiches", "cheese", "my mum's roast chicken"],
        },
        "stages": [
            [
                ("o", "I've gone {diet} since january, honestly don't miss meat much"),
                ("s", "Good to know — I'll keep that in mind for restaurant suggestions."),
                ("o", "except {miss} lol"),
            ],
        ],
        "questions": [
            ("single", ["What is my diet?", "Do I eat meat?"], [(0, 0)]),
            ("inference", ["Would a steakhouse be a good place to take me for dinner?"], [(0, 0)]),
            ("single", ["What food do I still crave?"], [(0, 2)]),
        ],
    },
    {
        "key": "wedding",
        "slots": {
            "couple": ["Sam and Ade", "Lucy and Finn", "Marta and Jonas", "Kez and Bilal"],
            "venue": [
                "a barn near Hereford",
                "a castle in Northumberland",
                "a vineyard outside Porto",
                "a lakeside hotel in Como",
            ],
            "outfit": ["a dark green suit", "a rust-coloured dress", "a navy jumpsuit"],
        },
        "stages": [
            [
                ("o", "the invite came! {couple} are getting married at {venue}"),
                ("s", "Lovely! Want me to save the date?"),
                ("o", "yes and remind me to RSVP"),
            ],
            [
                ("o", "[photo: me in {outfit} in a shop changing room] yes or no"),
                ("s", "Definitely yes, it suits you."),
                ("o", "bought it"),
            ],
        ],
        "questions": [
            ("single", ["Whose wedding am I invited to?", "Who is getting married?"], [(0, 0)]),
            (
                "single",
                ["Where is the wedding?", "What's the venue for {couple}'s ceremony?"],
                [(0, 0)],
            ),
            ("single", ["What did I buy to wear to the wedding?"], [(1, 0)]),
            ("multi", ["What outfit did I pick and whose wedding is it for?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "bills",
        "slots": {
            "provider": ["Octopus", "EDF", "Ovo", "British Gas"],
            "amount": ["142", "98", "175", "121"],
        },
        "stages": [
            [
                ("o", "energy bill is £{amount} this month?! with {provider}"),
                ("s", "That's a jump. Want me to compare tariffs?"),
                ("o", "yes please, fixed if possible"),
            ],
        ],
        "questions": [
            ("single", ["Who supplies my gas and electricity?"], [(0, 0)]),
            ("single", ["How high was my energy bill?"], [(0, 0)]),
            ("temporal", ["When did I complain about the energy bill?"], [(0, 0)]),
        ],
    },
    {
        "key": "concert",
        "slots": {
            "band": ["Fontaines D.C.", "Khruangbin", "Big Thief", "Little Simz", "Bonobo"],
            "venue": ["the Apollo", "the O2 Academy", "Roundhouse", "Barrowland"],
        },
        "stages": [
            [
                ("o", "got tickets for {band} at {venue}!!"),
                ("s", "Nice! When's the gig?"),
                ("o", "in about 6 weeks"),
            ],
            [
                (
                    "o",
                    "[photo: a blurry stage lit purple, crowd with phones up] best night "
                    "of the year",
                ),
                ("s", "Looks incredible!"),
            ],
        ],
        "questions": [
            ("single", ["Which band did I see live?", "Who did I buy gig tickets for?"], [(0, 0)]),
            ("single", ["Where was the concert?"], [(0, 0)]),
            ("temporal", ["When did I go to the gig?"], [(1, 0)]),
            ("multi", ["Which artist did I see and how was the show?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "password",
        "slots": {"service": ["the bank app", "my council tax account", "the gym portal"]},
        "stages": [
            [
                ("o", "locked myself out of {service} again"),
                ("s", "Frustrating! Want me to remind you to set up a password manager?"),
                ("o", "yeah ok, this weekend"),
            ],
        ],
        "questions": [
            ("single", ["Which account did I get locked out of?"], [(0, 0)]),
            ("inference", ["Do I struggle to remember my logins?"], [(0, 0)]),
        ],
    },
    {
        "key": "mum_health",
        "slots": {
            "op": ["hip replacement", "cataract surgery", "knee operation"],
            "hosp": ["St Mary's", "the Royal Infirmary", "Northgate hospital"],
        },
        "stages": [
            [
                ("o", "mum's {op} is booked for the 12th at {hosp}"),
                ("s", "I hope it goes smoothly. Shall I remind you to call her the day before?"),
                ("o", "please"),
            ],
            [
                ("o", "mum's home from hospital, walking with a frame already"),
                ("s", "That's great news. Wishing her a quick recovery."),
            ],
        ],
        "questions": [
            ("single", ["What operation did my mother have?"], [(0, 0)]),
            ("single", ["Which hospital was my mum treated at?"], [(0, 0)]),
            (
                "multi",
                ["What surgery did mum have and how is she doing after it?"],
                [(0, 0), (1, 0)],
            ),
            ("temporal", ["When did my mother come back home?"], [(1, 0)]),
        ],
    },
    {
        "key": "bike",
        "slots": {
            "bike": ["green Brompton", "old steel road bike", "cargo bike"],
            "where": ["outside the library", "at the station", "outside the gym"],
        },
        "stages": [
            [
                ("o", "someone nicked my {bike} {where}. lock cut clean through"),
                (
                    "s",
                    "That's awful. Do you want the police non-emergency number and the "
                    "insurance claim steps?",
                ),
                ("o", "yes both"),
            ],
        ],
        "questions": [
            ("single", ["What was stolen from me?", "What did I lose to a thief?"], [(0, 0)]),
            ("single", ["Where was my bicycle taken from?"], [(0, 0)]),
            ("temporal", ["When was my bike stolen?"], [(0, 0)]),
        ],
    },
    {
        "key": "language",
        "slots": {
            "lang": ["Japanese", "Portuguese", "Greek", "Korean"],
            "app": ["Duolingo", "a tutor on Zoom", "flashcards"],
            "streak": ["100", "60", "200"],
        },
        "stages": [
            [
                ("o", "trying to learn {lang} with {app}, it's humbling"),
                ("s", "Good luck! I can quiz you sometime if you like."),
            ],
            [
                ("o", "{streak} day streak!! 🔥"),
                ("s", "Impressive consistency!"),
            ],
        ],
        "questions": [
            ("single", ["Which language am I studying?"], [(0, 0)]),
            ("single", ["How am I learning the language?"], [(0, 0)]),
            ("multi", ["What language am I learning and how long is my streak?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "garden",
        "slots": {
            "veg": ["tomatoes", "courgettes", "runner beans", "chillies"],
            "pest": ["slugs", "aphids", "pigeons"],
        },
        "stages": [
            [
                ("o", "planted {veg} in the raised bed today, fingers crossed"),
                ("s", "Exciting! Remember to water them in the evening."),
            ],
            [
                ("o", "the {pest} have eaten half of them. war has been declared"),
                ("s", "Oh no! Copper tape or netting might help."),
                ("o", "ordered netting"),
            ],
        ],
        "questions": [
            (
                "single",
                ["What am I growing in the garden?", "What vegetables did I plant?"],
                [(0, 0)],
            ),
            ("single", ["What is attacking my vegetable patch?"], [(1, 0)]),
            ("multi", ["What did I plant and what has been eating it?"], [(0, 0), (1, 0)]),
        ],
    },
    {
        "key": "sleep",
        "slots": {"hours": ["4", "5", "3"]},
        "stages": [
            [
                ("o", "slept {hours} hours. neighbours had a party till 3am"),
                ("s", "Sorry, that's rough. Maybe a quiet morning?"),
                ("o", "coffee. lots of coffee"),
            ],
        ],
        "questions": [
            ("single", ["Why did I sleep badly?", "What kept me awake that night?"], [(0, 0)]),
        ],
    },
    {
        "key": "mortgage",
        "slots": {"rate": ["4.1%", "3.8%", "4.6%"], "broker": ["Helen", "Dev", "Margaret"]},
        "stages": [
            [
                ("o", "{broker} the broker found a five year fix at {rate}"),
                ("s", "That sounds reasonable. Shall I note the rate and the renewal date?"),
                ("o", "yes, renewal is in five years obviously"),
            ],
        ],
        "questions": [
            ("single", ["What interest rate did I get on my home loan?"], [(0, 0)]),
            ("single", ["Who is my mortgage broker?"], [(0, 0)]),
            ("inference", ["Do I have a mortgage?"], [(0, 0)]),
        ],
    },
    {
        "key": "football",
        "slots": {"team": ["Hibs", "Forest", "Brentford", "Celtic", "Leeds United"]},
        "stages": [
            [
                ("o", "{team} lost again. why do I do this to myself"),
                ("s", "Ha, there's always next week!"),
            ],
            [
                ("o", "WE WON. 3-1. {team} forever"),
                ("s", "Congratulations, great result!"),
            ],
        ],
        "questions": [
            ("single", ["Which football club do I support?"], [(0, 0), (1, 0)]),
            ("temporal", ["When did my team win 3-1?"], [(1, 0)]),
        ],
    },
    {
        "key": "neighbour",
        "slots": {
            "nb": ["Mr Patel", "Gloria", "Eamon", "the couple at number 12"],
            "favour": [
                "took in three parcels for me",
                "fed the cat while I was away",
                "lent me a ladder",
            ],
        },
        "stages": [
            [
                ("o", "{nb} next door {favour}, I should get them something"),
                ("s", "That's kind of them. Flowers or a bottle of wine?"),
                ("o", "wine I think"),
            ],
        ],
        "questions": [
            (
                "single",
                ["Which neighbour helped me out?", "Who did I want to thank with a gift?"],
                [(0, 0)],
            ),
            ("single", ["What did my neighbour do for me?"], [(0, 0)]),
        ],
    },
    {
        "key": "laptop",
        "slots": {
            "brand": ["ThinkPad", "MacBook Air", "Framework laptop", "Dell XPS"],
            "issue": [
                "spilled tea on the keyboard",
                "the screen cracked in my bag",
                "the battery swelled",
            ],
        },
        "stages": [
            [
                ("o", "disaster: {issue}. the {brand} is dead"),
                ("s", "Oh no! Is your work backed up?"),
                ("o", "mostly. repair shop says 5 days"),
            ],
        ],
        "questions": [
            ("single", ["What happened to my computer?"], [(0, 0)]),
            ("single", ["What model is my laptop?"], [(0, 0)]),
            ("temporal", ["When did my laptop break?"], [(0, 0)]),
        ],
    },
    {
        "key": "volunteer",
        "slots": {
            "where": ["food bank", "animal shelter", "parkrun", "community garden"],
            "day": ["Saturday mornings", "Wednesday evenings"],
        },
        "stages": [
            [
                ("o", "started helping at the {where}, {day}"),
                ("s", "That's great! I'll keep those times free."),
            ],
        ],
        "questions": [
            ("single", ["Where do I volunteer?", "Where do I give my time for free?"], [(0, 0)]),
            ("single", ["When do I do my volunteering?"], [(0, 0)]),
        ],
    },
    {
        "key": "glasses",
        "slots": {
            "rx": ["short-sighted", "long-sighted"],
            "frames": ["round tortoiseshell", "thin black metal", "clear acetate"],
        },
        "stages": [
            [
                ("o", "optician says I'm {rx} now, need glasses for the first time"),
                ("s", "Fun, new frames! Any favourites?"),
                ("o", "[photo: me trying on {frames} frames] these?"),
                ("s", "They look great on you."),
            ],
        ],
        "questions": [
            ("single", ["What did the eye test show?"], [(0, 0)]),
            ("single", ["Which glasses did I try on?"], [(0, 2)]),
            ("multi", ["Why do I need spectacles and what frames did I like?"], [(0, 0), (0, 2)]),
        ],
    },
    {
        "key": "podcast",
        "slots": {
            "pod": [
                "a true crime podcast",
                "a history podcast about Rome",
                "a podcast about urban planning",
            ]
        },
        "stages": [
            [
                ("o", "been bingeing {pod} on my commute"),
                ("s", "Any episode you'd recommend?"),
                ("o", "the first season is the best"),
            ],
        ],
        "questions": [
            ("single", ["What do I listen to on the way to work?"], [(0, 0)]),
        ],
    },
    {
        "key": "insurance",
        "slots": {"insurer": ["Aviva", "Direct Line", "Admiral"], "price": ["312", "455", "289"]},
        "stages": [
            [
                (
                    "o",
                    "home insurance renewal came in at £{price} with {insurer}, last year "
                    "was way less",
                ),
                ("s", "Want me to remind you to shop around before it auto-renews?"),
                ("o", "yes, two weeks before"),
            ],
        ],
        "questions": [
            ("single", ["Who is my home insurer?"], [(0, 0)]),
            ("single", ["How much is my house insurance renewal?"], [(0, 0)]),
        ],
    },
]

GREETINGS = [
    "morning!",
    "hey",
    "hi Steward",
    "you there?",
    "evening :)",
    "hello hello",
    "yo",
    "good morning",
    "hiya",
    "hey hey",
    "morning",
    "hi",
    "quick one",
]
STEWARD_GREETINGS = [
    "Good morning! What's up?",
    "Hi! How can I help?",
    "Here! What do you need?",
    "Hello! How's your day going?",
    "Hey! What can I do for you?",
]
CLOSINGS = [
    ("o", "ok thanks!"),
    ("o", "bye"),
    ("o", "night!"),
    ("o", "cheers"),
    ("o", "👍"),
    ("o", "thanks, talk later"),
    ("o", "perfect ty"),
    ("o", "great, bye!"),
    ("o", "ok"),
    ("o", "lol ok"),
    ("o", "sounds good"),
    ("o", "take care"),
]
STEWARD_ACKS = [
    "You're welcome!",
    "Anytime.",
    "Talk soon!",
    "Good night!",
    "Take care!",
    "Bye!",
    "Happy to help.",
    "See you!",
]
SMALL_TALK: list[list[Turn]] = [
    [
        ("o", "so grey today"),
        ("s", "It does look gloomy. Rain until the evening, I'm afraid."),
        ("o", "great"),
    ],
    [
        ("o", "how are you anyway"),
        ("s", "All good on my side! Anything on your mind?"),
        ("o", "not really, just bored"),
    ],
    [("o", "remind me to call the bank at 3"), ("s", "Done, I'll remind you at 3pm."), ("o", "ty")],
    [("o", "what's 15% of 80"), ("s", "12."), ("o", "thanks")],
    [
        ("o", "can you set a timer for the pasta, 11 min"),
        ("s", "Timer set for 11 minutes."),
        ("o", "👍"),
    ],
    [("o", "ugh mondays"), ("s", "Hang in there, it's nearly lunch."), ("o", "lol")],
    [
        ("o", "is it going to rain tomorrow"),
        ("s", "Light showers in the morning, dry after."),
        ("o", "ok"),
    ],
    [("o", "tell me something nice"), ("s", "Octopuses have three hearts."), ("o", "cute")],
    [
        ("o", "add milk and eggs to the shopping list"),
        ("s", "Added milk and eggs."),
        ("o", "and bread"),
    ],
    [("o", "what time is it in Tokyo"), ("s", "It's just past midnight there."), ("o", "ah ok")],
    [("o", "where is it"), ("s", "Where is what?"), ("o", "nvm found it")],
    [("o", "so tired"), ("s", "Early night maybe?"), ("o", "maybe")],
    [("o", "wanna hear something funny"), ("s", "Always!"), ("o", "actually I forgot what it was")],
]
