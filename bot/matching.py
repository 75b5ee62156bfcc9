"""Map an inbound SMS to one distress state and rank the skills that fit it.

The matcher is a weighted lexicon, not a model: every decision can be explained by the cues it
lists in `StateMatch.evidence`, a counselor can read why a text was routed where it was, and a
clinician can change a weight without retraining anything. It runs after the crisis check
(`bot.safety`) and never decides anything about risk.

Pipeline for one text:
1. raw-text cues that normalisation would erase (emoji, emoticons such as ":(");
2. clause breaks marked, times like "3am" split, then `bot.text.normalise`;
3. SMS spellings expanded ("rn", "u", "cannot" -> "cant"), unknown words checked for typos
   against the lexicon (edit distance 1, or 2 for long words; results cached per word);
4. longest-match phrase scan over the tokens: each cue votes for states with a weight, scaled by
   intensifiers ("so", "af") and dropped when negated ("not anxious anymore");
5. the library's trigger phrases vote too, more weakly;
6. the best state wins if it clears a threshold and outscores the "no distress" cues
   (greetings, logistics, thanks, good news); ties go to the more acute state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rapidfuzz.distance import OSA, Levenshtein

from bot.text import normalise

STATES: tuple[str, ...] = (
    "anxiety",
    "panic",
    "anger",
    "sadness",
    "stress",
    "craving",
    "sleep",
    "dissociation",
    "loneliness",
    "rumination",
    "shame",
    "conflict",
)
NONE = "none"

# Ties between states go to the more acute one: a skill for panic or a craving is the safer
# offer when a text is genuinely split between two states.
_PRIORITY: tuple[str, ...] = (
    "panic",
    "craving",
    "dissociation",
    "anger",
    "conflict",
    "shame",
    "anxiety",
    "sadness",
    "loneliness",
    "sleep",
    "rumination",
    "stress",
)
_RANK = {state: i for i, state in enumerate(_PRIORITY)}

# A state needs at least this much evidence; one clear word (weight 2-4) is enough, one weak
# cue (a swear word, "tired") is not.
THRESHOLD = 1.5
# "none" wins a mixed text only when its cues clearly outweigh the distress: "sorry, running
# late" is logistics, "thanks, still anxious" is anxiety.
NONE_MARGIN = 1.5
TRIGGER_WEIGHT = 1.5  # a library trigger phrase alone is just enough, and loses to any lexicon cue
TRIGGER_BONUS = 0.5  # rank_skills: a skill whose trigger the text hits moves ahead of equals
_NEGATED_POSITIVE_WEIGHT = 2.0  # "not ok", "dont feel happy" -> sadness
_RESOLVED_WEIGHT = 1.0  # "not anxious anymore" -> evidence for "none"
_INTENSIFY = 1.3
_SOFTEN = 0.75

_CLAUSE = "zzclause"  # marker token for sentence punctuation (normalise() erases punctuation)

# --------------------------------------------------------------------------------------------
# Lexicon. Syntax of one entry: words separated by spaces; "word*" matches any word starting
# with "word"; "(a|b c|d)" is an alternation of word sequences; "~" skips 0-2 words; "#" is a
# number. Entries are separated by " | " outside parentheses. Weights: 4 unambiguous phrase,
# 3 clear emotion word, 2 likely, 1 weak context (counts only together with something else).
# Apostrophes are gone after normalisation ("can't" -> "cant"), and "cannot"/"can not" are
# rewritten to "cant" before matching.
# --------------------------------------------------------------------------------------------
_FEEL = "(feel|feeling|feelin|feels|felt|im|i am|am|been|getting|so|really|very|just)"
_PEOPLE = (
    "(mom|mum|mother|dad|father|boss|partner|husband|wife|boyfriend|girlfriend|ex|roommate|sister|"
    "brother|coworker|neighbor|neighbour|son|daughter|family|friend|sponsor|aunt|uncle|cousin|"
    "landlord|kids dad|kids mom|baby daddy|baby mama|in laws|parents|teacher|manager|supervisor)"
)

_LEXICON: dict[str, list[tuple[float, str]]] = {
    "anxiety": [
        (3.5, """
            freaking out (about|over) | freak out (about|over) | something bad (will|is going to|is
            gonna|gonna|might) happen | cant shake (this|the) feeling | stuff of nightmares | sick with
            worry | worried sick | nervous wreck | cant stop worrying | knot in my stomach | knots in my
            stomach | stomach in knots | stomach is in knots
        """),
        (3.0, """
            anxi* | anxous | nervous* | worr* | scared | afraid | frightened | fearful | terrified |
            terrifying | uneasy | apprehensive | jittery | jumpy | paranoid | dread | dreading | dreaded |
            on edge | bad feeling | butterflies | in knots | my nerves | nerves are shot | scared of |
            scared that | scares me | freaked | fretting | intimidated | intimidating | on high alert
        """),
        (2.0, """
            scary | fear | fears | feared | frightening | tense | restless | what if | uneasiness |
            spooked | nightmare | on pins and needles | creepy | unsettled | antsy | sick to my stomach |
            freaking out | freak out | nerves | edgy | keyed up | shook | sick with nerves
        """),
        (1.5, """
            horror | horrifying | dangerous | danger | shudder
        """),
    ],
    "panic": [
        (4.0, """
            panic attack | panic attacks | having an attack | heart
            (is|was|started|starts|keeps|kept|been)? (racing|pounding|beating fast|beating so fast|going
            crazy|going a mile a minute|going so fast|wont slow down|beating out of my chest|pounding out
            of my chest) | cant (breathe|breath|get air|get enough air|catch my breath|get a breath|get a
            full breath|get a deep breath|get my breath) | hyperventilat* | pannick* | panick* | chest
            (is|feels)? (so)? tight | tight chest | short of breath | walls (are)? closing in | feel like
            im (dying|going to die|gonna die|having a heart attack) | feel like i am dying | (going
            to|gonna) (faint|pass out) | full panic | panic mode | room is spinning | palpitations |
            throat (is)? closing
        """),
        (3.0, """
            panic | panics | panicked | panicking | panicky | heart racing | racing heart | pounding heart
            | lightheaded | light headed | losing control | cant calm down | faint
        """),
        (2.0, """
            dizzy | pass out | spinning | trembling | tingling | scared im dying | hard to breathe | going
            crazy | shaking all over | im shaking | cant stop shaking | shaky | chest hurts | choking
        """),
        (1.5, """
            freaking out | freak out
        """),
        (1.0, """
            shaking | sweating
        """),
    ],
    "anger": [
        (4.0, """
            blood (is)? boil* | makes my blood boil | seeing red | makes me want to
            (scream|punch|hit|break|throw|smash) | shaking with rage
        """),
        (3.0, """
            angry | angy | anger | mad | pissed | furious | fuming | rage | raging | enraged | livid |
            seething | irate | irritated | irritable | annoyed | aggravated | infuriat* | outraged |
            pissing me off | pisses me off | pissed off | fed up | ticked off | sick and tired | so done
            with | (want|wanna|could|going) to scream | could scream | (punch|hit|kick|smash|break|throw)
            (a|the|something|someone|somebody|stuff|things|everything|my|a wall|the wall|him|her) | smash
            | lose it on | about to lose it | ready to explode | ready to snap | hate everyone | hate
            people | hate (him|her|them|this|my) | makes me (so)? (mad|angry|furious) | wanted to
            (ram|hit|punch)
        """),
        (2.5, """
            gets on my nerves | get on my nerves | getting on my nerves | bugging me | bugs me | pisses me
            | shut up | stfu | screw (you|this|that|them|him|her|it) | heated | pissy
        """),
        (2.0, """
            annoying | frustrated | frustrating | hate | hates | hated | sick of | scream | explode | snap
            | lose it | grr* | resent* | bitter | cranky | grumpy | disrespect* | yell at | bullshit |
            ridiculous | rude | asshole* | wtf | hostile
        """),
        (1.5, """
            fuck* | stupid | idiot* | bs | pathetic | moron* | jerk | damn | goddamn* | ffs | tf |
            bastard* | cunt* | prick | bitch* | shithead* | dumbass* | scum* | hypocrit* | arrogan* |
            selfish | obnoxious | irritating | offend* | disgrace*
        """),
        (1.0, """
            ugh | shit | hell | dumb | worst | crap | nonsense | trash
        """),
    ],
    "sadness": [
        (3.0, """
            sad | sadness | saddest | depressed | depression | depressing | crying | cried | cry | cries |
            tears | teary | tearful | sobbing | bawling | weeping | tearing up | heartbroken |
            heartbreaking | broken heart | grief | grieving | grieve | mourning | miserable | unhappy |
            gloomy | bummed | devastat* | passed away | heart hurts | dark place | hopeless | down in the
            dumps | funk | in a rut | {FEEL} (down|low|blue) | down today | down lately | so down | really
            down | feel like crap | feel like shit | lost all hope | whats the point | sorry for your loss
            | sorry about your loss | sorry to hear that
        """),
        (2.5, """
            miss (my|him|her|them|you|it|those|the) | lost my | died | pointless | empty | heavy hearted |
            unmotivated | no motivation | no energy | upset | sadly | disappoint* | letdown | let down |
            feel bad | feel so bad | feeling bad | feel awful | feel terrible | defeated | broken | choked
            up | no point
        """),
        (2.0, """
            hurt | hurts | hurting | loss | rip | unfortunately | unfortunate | depresion | sorry to hear
            | feels (gray|grey|flat|heavy) | feel (gray|grey|flat|heavy) | so heavy | heavy today | miss |
            missing | (bad|rough|hard|tough|awful|terrible|horrible) (day|week|times|time) | in pain |
            sounds awful | blah
        """),
        (1.5, """
            meh
        """),
        (1.0, """
            sucks | down | low | blue | tired of everything | death | dead | heavy | lost | gray | grey |
            flat
        """),
    ],
    "stress": [
        (3.0, """
            stress | stressed | stressing | stressful | overwhelm* | overwelm* | piling up | piled up |
            piling on | burned out | burnt out | burnout | burning out | (so much|too much|a ton|tons)
            (stuff|work|things)? to do | cant keep up | swamped | (stretched|spread) (so|too)? thin | cant
            do it all | (too much|so much) on my plate | drowning in | under (a lot of|so much)? pressure
            | frazzled | running on empty | everything at once | happening at once | so much going on |
            too much going on | so behind | falling behind | behind on | work is (insane|crazy|nuts|too
            much|a lot|brutal|hell) | overloaded | overload | crazy busy | so busy | super busy | slammed
            | cant catch a break | full plate | plate is (too|so)? full | (so much|too much)
            (work|homework|stuff)
        """),
        (2.0, """
            pressure | deadline | deadlines | cant handle | drowning | on my plate | juggling | hectic |
            bills | to do list | crushing me | killing me | no time | so many things | rent is due |
            tapped out | exhausting | exhausted | worn out | maxed out | a lot going on | piling | on top
            of everything | money is tight | money problems | cant (cover|pay|afford) | rent is going up
        """),
        (1.5, """
            too much | exams | exam | finals | stretched | cant even
        """),
        (1.0, """
            busy | due | rent | tired
        """),
    ],
    "craving": [
        (4.0, """
            (want|need|wanna|could use|could go for|go for|itching for|dying for|craving) (a|some|one)?
            (drink|beer|shot|drinks|beers|cigarette|cig|smoke|hit|line|pill|bottle|pack|bump|fix|drag) |
            (want|wanna|need) to (drink|use|smoke|vape|gamble|get high|get drunk|get wasted|relapse|bet|go
            drink|go out drinking) | (get|getting|got) (high|wasted|drunk|loaded|blasted|faded|lit) | cant
            stop thinking about (drinking|using|a drink|getting high|the bottle) | (urge|urges) to
            (drink|use|smoke|gamble) | triggered to (use|drink) | thinking about
            (using|drinking|relapsing|getting high|buying|going out drinking) |
            (call|calling|text|texting|hit up|hitting up) my (old)? (dealer|plug) | go to the
            (bar|casino|liquor store) | liquor store | picking up again | pick up again | using again |
            drinking again | so close to using | so tempted | buy a pack | (a|one) pack of
        """),
        (3.5, """
            fiending | feening | jonesing | tempted | temptation | just one (drink|beer|hit)
        """),
        (3.0, """
            crav* | urge | urges | relapse | relapsing | dealer | casino | gamble | gambling | cigarette |
            cigarettes | vape | vaping | nicotine | booze | liquor | vodka | whiskey | tequila | slots |
            sportsbook | scratchers
        """),
        (2.0, """
            drink | drinking | cig | cigs | itching | offered me | smokes | plug | everyone is drinking |
            betting | poker
        """),
        (1.5, """
            beer | beers | wine | bottle | weed | smoke | smoking | wasted | drunk | xanax | benzos | oxy
            | percs | coke | meth | heroin | fent | crack | molly | pills | lotto
        """),
        (1.0, """
            use | using | bet | sober | lottery | payday | high | bar | party | join
        """),
    ],
    "sleep": [
        (4.0, """
            cant (seem to|even|ever)? (sleep|fall asleep|stay asleep|get to sleep|get back to sleep|fall
            back asleep|fall back to sleep|get any sleep) | (havent|didnt|barely|hardly|never)
            (slept|sleep) | no sleep | havent been sleeping | tossing and turning | up all night | awake
            all night | wide awake | still awake | lying awake | laying awake | sleepless | insomnia |
            keep waking up | keeps waking me | keep waking | woke up at # | waking up at # | slept
            (like|only|maybe|about|for)? # hours | only slept | need sleep but cant | sleep (is|isnt)? not
            happening | (wont|doesnt|didnt) let me sleep | # in the morning | (trouble|struggling|hard
            time|having a hard time|problems) (sleeping|falling asleep|staying asleep|getting to sleep) |
            awake since # | up since #
        """),
        (3.0, """
            awake | still up | im up # | woke up # | sleep is (so)? bad | nightmares | night terrors | bad
            dream | bad dreams | cnt sleep | (bad|rough|long|restless|sleepless) night
        """),
        (2.0, """
            # am | waking up
        """),
        (1.0, """
            tired | exhausted | night | bed | wake | sleep | asleep | sleeping | wake up
        """),
    ],
    "dissociation": [
        (4.0, """
            nothing (feels|seems|is) real | doesnt feel real | dont feel real | not real | unreal |
            outside (my|of my) body | out of my body | outside myself | not in my body | watching myself |
            dont feel anything | cant feel anything | feel nothing | depersonaliz* | derealiz* |
            dissociat* | flashback | flashbacks | going through the motions | glass wall | losing time |
            lost time | lost track of time | (like|as if) (im|i am|i was)? (in|watching) a movie | like a
            movie | body (doesnt|dont) feel like mine | everything
            (seems|feels|looks|is|felt|seemed|looked|was) (fake|strange|distant|far
            away|muffled|foggy|blurry)
        """),
        (3.0, """
            numb | numbness | numbed | detached | spaced out | spacing out | zoned out | zoning out |
            autopilot | in a dream | like a dream | like im dreaming | not here | not really here | in a
            daze | disconnected | dont feel like myself | not myself | checked out | floating | like
            (a|an) (robot|ghost|zombie) | feel like (a|an)? (robot|ghost|zombie) | dazed | cant feel my
            (body|hands|face|legs|feet|arms) | (wasnt|not|im not) (really)? there
        """),
        (2.0, """
            frozen | froze | foggy | fog | far away | blanked | blank | freeze | out of it | dreamlike |
            spacey | underwater | muffled
        """),
        (1.0, """
            robot | ghost | zombie
        """),
    ],
    "loneliness": [
        (4.0, """
            (no one|nobody|noone) (ever)?
            (texts|text|calls|call|cares|care|checks|checked|reached|reaches|wants|gets|to talk|to
            hang|talks|answers|understands|likes|loves|misses|notices|visits|around) | (no one|nobody)
            would (notice|care|miss me|even notice) | have no one | got no one | no friends | left out |
            everyone left | everybody left | (everyone|everybody) (forgot|ignores|abandoned|left) | forgot
            my birthday | forgot about me | forget about me | stopped inviting me | everyone has plans but
            me | miss having (people|friends|someone) | by myself again | all alone | all by myself | feel
            (so|completely|totally)? alone | spending (the|christmas|thanksgiving)? ~ alone | ignores me |
            ignore me | ignoring me | (dont|do not) (really)? have (anyone|anybody|friends|any friends) |
            (wish|want) i had (someone|somebody|friends|a friend|people) | someone to talk to | need a
            friend | no one around
        """),
        (3.5, """
            lonely | lonley | loneliness | isolated | isolating | isolation
        """),
        (3.0, """
            alone | invisible | friendless | ignored | by myself | abandoned
        """),
        (2.0, """
            on my own
        """),
        (1.0, """
            no one | nobody | noone
        """),
    ],
    "rumination": [
        (4.0, """
            overthink* | over thinking | over think | ruminat* | replaying | rehashing | rehash | keep
            replaying | replay it | over and over | going in circles | in circles | on repeat | on a loop
            | stuck in my head | cant get (it|that|this|him|her|them)? (conversation)? out of my head |
            (cant|wont) stop thinking | cant stop replaying | second guessing | thinking about it nonstop
            | (mind|brain|thoughts|head) (keeps|keep|wont|is|are)? (stop|shut up|shut off|turn
            off|racing|spinning|looping|going|stuck|replaying) | cant turn my (brain|mind|head) off |
            racing thoughts | keep thinking | keep going over | going over it | running it back | same
            (thought|thoughts) | (keeps|keep) going back to | going back over | (keep|keeps|kept) going
            (back)? over
        """),
        (2.5, """
            what i did wrong | what i should have said | what i shouldve said
        """),
        (3.0, """
            obsess* | dwelling | dwell | looping | cant let it go | stuck on | going over | nonstop
        """),
        (1.5, """
            in my head | thinking about
        """),
        (1.0, """
            thoughts | loop | replay
        """),
    ],
    "shame": [
        (4.0, """
            hate myself | hate me | hate who i am | hate what i (did|became|have become) | ashamed | my
            fault | blame myself | blaming myself | cant forgive myself | humiliat* | mortified | let
            (everyone|everybody|my|them|you|her|him|people|myself|us) ~ down | im (a|such a)
            (failure|disappointment|mess|loser) | (im|feel)? (so|such)? (stupid|dumb) for | feel (so)?
            (stupid|dumb) | im so (stupid|dumb) | feel like (an|such an) idiot | im (an|such an) idiot |
            disappointed in myself | terrible
            (mom|mother|dad|father|parent|person|friend|wife|husband|son|daughter) | bad
            (mom|mother|dad|father|parent|person) | cant look anyone in the eye | disgusted with myself |
            guilt is | so much guilt | said something (dumb|stupid) | feel (so)?
            (awful|terrible|bad|horrible) (about|for)
            (it|what|myself|how|saying|doing|yelling|drinking|using|relapsing|that|last) | i ruined
            (it|everything) | cant believe i (did|said) | im (garbage|trash|pathetic|the worst)
        """),
        (3.0, """
            guilty | guilt | shame | shameful | embarrass* | failure | disappointment | regret* | i messed
            up | i screwed up | messed up again | screwed up again | blew it | feel gross | feel like
            garbage | feel like trash | my bad | worthless | self conscious | facepalm
        """),
        (2.0, """
            sorry | apologi* | awkward | messed up | screwed up | relapsed | oops | loser
        """),
        (1.0, """
            cringe
        """),
    ],
    "conflict": [
        (4.0, """
            screaming match | (had|got into) it out | got into it | fell out with | falling out |
            (set|setting|need) (a|some)? (boundary|boundaries) | stand up (to|for myself) | (my|with
            my|the) {PEOPLE} and i (keep|are|were|got|had|cant|always|just) | me and my {PEOPLE} |
            (fight|fighting|arguing|argued|argument|clashing) with | yelled at me | yelling at me |
            screamed at me | screaming at me | blew up at | keeps
            (criticizing|pushing|pressuring|borrowing|crossing|disrespecting|starting|taking|calling|texting|
            asking|bothering|bringing
            up|bringing it up) | wont listen | back off | say no | tell (him|her|them|my) ~ (no|i need|to
            stop|to leave|to back off|how i feel) | (pressuring|pushing) me | start*
            (stuff|drama|shit|something|a fight|fights|arguments) with me | silent treatment |
            (is|are|was|got) mad at me | (arent|not|stopped) (talking|speaking) | beef with | tension with
            | confront* | we (end up|always|keep|ended up|just) (screaming|yelling|fighting|arguing) |
            (screaming|yelling) at each other
        """),
        (3.0, """
            fight | fighting | fought | fights | argue | arguing | argued | argument | arguments |
            clashing | clash | boundary | boundaries | blowup | blow up | drama | yelled back | stood up
            to | disagree* | toxic | lied to me | cheated on me | need space
        """),
        (0.5, """
            {PEOPLE}
        """),
    ],
}

# Cues that the text is not about distress. They compete with the states: a lone "sorry" in
# "sorry running late" is logistics, while "thanks, still so anxious" still routes to anxiety.
_NONE_LEXICON: list[tuple[float, str]] = [
    (3.0, """
        what time | when is | (is|whats|where is) (group|my|the) | reschedule | running late | be late | #
        (min|mins|minutes) late | see you | see u | thank (you|u) | thanks | thx | ty | tysm | that helped
        | it helped | helped a lot | (feeling|feel|doing|im|am) (much|a lot|way)?
        (better|good|great|well|fine|ok|okay|alright|calm|calmer|happy|proud) | # days (clean|sober) | got
        (the|a|my)? (job|new job|chip) | slept (great|well|good) | all good | not bad | good
        (morning|night|day|news|evening) | great day | good day | just checking in | this number | who do
        i call | hows it going | whats up
    """),
    (1.5, """
        hi | hello | hey | morning | appointment | appt | session | group | schedule | address | ride |
        counselor | ok | okay | kk | k | cool | nice | yes | yeah | yep | sure | lol | haha* | lmao |
        sounds good | great | good | fine | happy | proud | calm | calmer | relaxed | excited | awesome |
        amazing | love | glad | passed | clean | congrats | thank | thankful | grateful | better |
        beautiful | funny | agree | cute
    """),
]

# Phrases that look like cues but are not: they consume their words and vote for nothing
# ("no worries" is not worry, "in the morning" is not a greeting).
_NEUTRAL = """
    no worries | no worry | not to worry | dont worry | in the morning | no problem | not sure | no way |
    not bad at all | dead tired | sleep well | sleep tight | good night sleep | drink water | drinking
    water | drink some water | killed it | killing it | im dead | lol im dead | dying to | cant wait
"""

# Tokens whose negation turns into evidence of low mood ("not ok", "dont feel happy").
_POSITIVE_WORDS = frozenset({"ok", "okay", "good", "great", "fine", "happy", "better", "alright", "well"})

_EMOJI: dict[str, tuple[str, float]] = {
    "\U0001f622": ("sadness", 2.5),  # crying face
    "\U0001f62d": ("sadness", 3.0),  # loudly crying face
    "\U0001f494": ("sadness", 3.0),  # broken heart
    "\u2639": ("sadness", 2.0),  # frowning face
    "\U0001f641": ("sadness", 2.0),  # slightly frowning face
    "\U0001f61e": ("sadness", 2.0),  # disappointed face
    "\U0001f614": ("sadness", 1.5),  # pensive face
    "\U0001f625": ("sadness", 2.0),  # sad but relieved face
    "\U0001f63f": ("sadness", 2.0),  # crying cat
    "\U0001f620": ("anger", 3.0),  # angry face
    "\U0001f621": ("anger", 3.0),  # pouting face
    "\U0001f92c": ("anger", 3.0),  # face with symbols on mouth
    "\U0001f624": ("anger", 2.0),  # face with steam from nose
    "\U0001f4a2": ("anger", 2.0),  # anger symbol
    "\U0001f630": ("anxiety", 3.0),  # anxious face with sweat
    "\U0001f61f": ("anxiety", 2.5),  # worried face
    "\U0001f628": ("anxiety", 3.0),  # fearful face
    "\U0001f62c": ("anxiety", 1.5),  # grimacing face
    "\U0001f613": ("anxiety", 1.5),  # downcast face with sweat
    "\U0001f627": ("anxiety", 2.0),  # anguished face
    "\U0001f631": ("panic", 3.0),  # face screaming in fear
    "\U0001f975": ("panic", 1.0),  # hot face
    "\U0001f629": ("stress", 1.5),  # weary face
    "\U0001f62b": ("stress", 1.5),  # tired face
    "\U0001f92f": ("stress", 2.0),  # exploding head
    "\U0001f634": ("sleep", 1.0),  # sleeping face
    "\U0001f971": ("sleep", 1.0),  # yawning face
    "\U0001f636": ("dissociation", 2.0),  # face without mouth
    "\U0001f635": ("dissociation", 1.5),  # dizzy face
    "\U0001f633": ("shame", 2.0),  # flushed face
    "\U0001f926": ("shame", 2.0),  # face palm
    "\U0001f37a": ("craving", 1.5),  # beer mug
    "\U0001f37b": ("craving", 1.5),  # clinking beer mugs
    "\U0001f377": ("craving", 1.5),  # wine glass
    "\U0001f943": ("craving", 1.5),  # tumbler glass
    "\U0001f6ac": ("craving", 1.5),  # cigarette
    "\U0001f3b0": ("craving", 1.5),  # slot machine
}
_NONE_EMOJI = frozenset(
    "\U0001f602\U0001f923\U0001f60a\U0001f600\U0001f603\U0001f604\U0001f601\U0001f642\U0001f60d"
    "\U0001f389\U0001f44d\u2764\U0001f64f\U0001f4aa\U0001f60e\U0001f973\U0001f970\U0001f618\U0001f38a"
)
_EMOTICONS: list[tuple[re.Pattern[str], str, float]] = [
    (re.compile(r"(?<![a-z0-9])>:-?\("), "anger", 2.0),
    (re.compile(r"(?<![>a-z0-9]):'?-?\((?!\w)|(?<![a-z0-9]);-?\((?!\w)|(?<![a-z0-9])D:(?!\w)"),
     "sadness", 2.0),
]

# SMS spellings -> the words the lexicon uses. Multi-word values are split into tokens.
_SMS: dict[str, str] = {
    "u": "you", "ur": "your", "r": "are", "rn": "right now", "n": "and", "w": "with", "wit": "with",
    "bc": "because", "cuz": "because", "cus": "because", "coz": "because", "cuzz": "because",
    "tmrw": "tomorrow", "tmr": "tomorrow", "tmrrw": "tomorrow", "tomo": "tomorrow", "2day": "today",
    "2nite": "tonight", "tonite": "tonight", "nite": "night", "b4": "before", "thru": "through",
    "tho": "though", "abt": "about", "ppl": "people", "pls": "please", "plz": "please",
    "wanna": "want to", "gonna": "going to", "gotta": "got to", "tryna": "trying to",
    "ima": "i am going to", "imma": "i am going to", "lemme": "let me", "gimme": "give me",
    "outta": "out of", "lotta": "lot of", "alot": "a lot", "kinda": "kind of", "sorta": "sort of",
    "idk": "i dont know", "dunno": "dont know", "ik": "i know", "ngl": "not going to lie",
    "nvm": "never mind", "omw": "on my way",
    "cannot": "cant", "cnt": "cant", "couldnt": "cant", "cudnt": "cant", "cn": "can", "dnt": "dont",
    "bf": "boyfriend", "gf": "girlfriend", "bff": "friend",
    "rly": "really", "rlly": "really", "realy": "really", "srsly": "seriously", "sm": "so much",
    "soo": "so", "hella": "very", "v": "very", "asf": "af",
    "hrs": "hours", "hr": "hour", "txt": "text", "txts": "texts", "txting": "texting", "txted": "texted",
    "msg": "message", "noone": "no one", "nobodys": "nobody", "everyones": "everyone",
    "okk": "ok", "okie": "ok", "k": "ok", "kk": "ok", "thnx": "thanks", "thanx": "thanks", "tx": "thanks",
    "sux": "sucks",
    "fkn": "fucking", "fckn": "fucking", "fcking": "fucking", "fuckin": "fucking", "effing": "fucking",
    "freakin": "freaking", "freakn": "freaking", "frickin": "freaking", "friggin": "freaking",
    # dropped final g
    "feelin": "feeling", "nothin": "nothing", "somethin": "something", "thinkin": "thinking",
    "goin": "going", "tryin": "trying", "cryin": "crying", "drinkin": "drinking", "cravin": "craving",
    "overthinkin": "overthinking", "wakin": "waking", "sleepin": "sleeping", "fightin": "fighting",
    "arguin": "arguing", "panickin": "panicking",
}
# Word pairs rewritten before matching ("can not" -> "cant", "i m" after apostrophe loss).
_PAIRS: dict[tuple[str, str], str] = {
    ("can", "not"): "cant", ("can", "t"): "cant", ("don", "t"): "dont", ("i", "m"): "im",
    ("won", "t"): "wont", ("didn", "t"): "didnt", ("doesn", "t"): "doesnt", ("isn", "t"): "isnt",
    ("haven", "t"): "havent", ("couldn", "t"): "couldnt", ("wasn", "t"): "wasnt",
}

_NEGATORS = frozenset({
    "not", "no", "never", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "aint", "nor",
    "without", "havent", "hasnt", "hadnt", "wont", "wouldnt", "shouldnt", "nothing", "less",
})
# "never been so anxious" and "not just sad" assert the feeling; "trying not to drink" is a craving.
_NEGATION_BREAKERS = frozenset({"but", "though", "tho", "yet", "although", "still", "except", _CLAUSE})
_NEGATION_SCOPE = frozenset({
    "feel", "feeling", "felt", "feels", "am", "be", "been", "being", "is", "are", "was", "were", "so",
    "too", "really", "very", "that", "even", "at", "all", "as", "get", "getting", "got", "a", "an", "the",
    "any", "im", "i", "it", "its", "to", "going", "want", "need", "have", "having", "much", "more",
    "super", "overly", "particularly", "exactly", "quite", "totally", "just", "only", "making", "make",
    "me", "myself", "my", "makes", "feelin", "gonna", "wanna", "anything", "like", "about", "remotely",
    "longer",
})
_NEVER_INTENSE = frozenset({"so", "this", "more", "as", "such", "that"})
_NOT_JUST = frozenset({"just", "only"})
_EFFORT = frozenset({"trying", "try", "tried", "hard", "want", "need", "how"})
_RESOLUTION = frozenset({"anymore", "longer", "today", "now", "at"})

_PRE_INTENSIFIERS = frozenset({
    "so", "really", "very", "super", "extremely", "totally", "completely", "incredibly", "too",
    "literally", "absolutely", "fucking", "freaking", "insanely", "seriously", "crazy", "majorly",
})
_POST_INTENSIFIERS = frozenset({"af", "asf"})
_POST_INTENSIFIER_PAIRS = frozenset({("so", "bad"), ("so", "much"), ("as", "hell"), ("real", "bad")})
# Skipped inside a phrase so that "cant even sleep" or "could really use a drink" still match.
_FILLERS = frozenset({
    "really", "so", "just", "actually", "literally", "kinda", "totally", "still", "even", "seriously",
    "honestly", "very", "super", "fucking", "freaking", "fkn", "all", "now", "right", "ever", "too",
})
_SOFTENERS = frozenset({
    "kinda", "kind", "bit", "little", "slightly", "somewhat", "lowkey", "mildly", "sort",
})
_NUMBER_WORDS = frozenset({
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "twenty", "thirty", "sixty", "ninety", "a", "an", "few", "couple",
})

# Common words that sit one edit away from a lexicon word and must never be "corrected" into
# it ("tried" is not "tired", "lovely" is not "lonely", "curious" is not "furious").
_KNOWN_WORDS = frozenset("""
about above after again against along alone among angel angle anything anyway around aside asked
aware awoke being below bored bread break bring broke brown build built bunch calls carving caving
cared cares cause causes chance change cheap check child clean clear close could court crazy crowd
curious dance dated dates doing dozen dream dress dressed drank drive drove drunk during early earth
eager eight either empty enjoy enough every faith fault fight fifth fired first flash floor found
frank fresh fried fries fright front fruit funny going great green group guess guilt happy heard
heart heavy hired horse hours house human impressed insulated later laugh learn least leave light
liked lines lives loved lovely lover lower lucky lunch maybe means meant might mined missed mixed
money month mouth music never night noise north nurse often order other owner panel paper party
passed peace person phone piece place plain plane plans plant plate point pound power pressed
price pride prime print proud prone quiet quite raise range ranger raving ready right river rough
round saved scarce scarred scares sacred scene score sense serve seven shade shake shaky shall shape
share shared sharp sheep shift shirt short shower sight since skill sleek sleet slept small smart
smell smile smoke snare sorry sound south space spare speak spend spent spoke sport staff stage stand
start state steep still stone store story strange stress street strong stuff style sugar sunny sweet
table taken teach teeth thank their there these thick thing think third those though three threw
tight tired times today total touch tough tower track trade train tried tries truly trust truth
trying under until upper usual using valley value visit voice waste watch water weird wheel where
which while white whole whose woman women words world worse worst worth would write wrong wrote
years young yours danger manic hungry frying drying lonely fearless sadder attached unread
together tonight tomorrow because before school should something people really always little
youre thats theyre theres whats wasnt isnt arent didnt doesnt couldnt shouldnt wouldnt havent
finding hasnt werent youve weve theyve youll itll looking class teams lived sharing battle passing
black plays talking feelings understand waiting making taking asking trying saying paying
playing staying buying dying lying tying eating seeing fixed mixed tests texts tried tries cried
lately lastly mostly nicely surely barely hardly simply pretty clearly bitter better butter
scene scent sense tense dense terse games gamer names named cares cared hates dates rates mates
matter letter bitter sister mister horror mirror error fears gears years tears beard heard balls
""".split())

# Full forms of the lexicon's stems ("anxi*"), so a typo of them can still be corrected.
_STEM_FORMS = frozenset("""
anxious anxiety anxiously worried worrying worries nervous nervously embarrassed embarrassing
humiliated humiliating overwhelmed overwhelming overthinking infuriated infuriating devastated
devastating hyperventilating ruminating dissociating dissociated panicking panicked cravings craving
disappointed disappointing resentful frustrated depressed depression exhausted insomnia
""".split())

_CLAUSE_PUNCT = re.compile(r"[.!?;,:]+(?=\s|$)|\n+|\s+-+\s+")
_TIME = re.compile(r"\b(\d{1,2})(?::\d\d)?\s*(am|pm|hrs?|hours?|mins?|min|days?|x)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateMatch:
    """The matcher's answer: one state (or "none"), its score and every cue that was used."""

    state: str
    score: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class SkillHistory:
    """What the bot knows about one participant's past sessions."""

    recent: tuple[str, ...] = ()  # skill ids, most recent first
    own_gain: Mapping[str, float] = field(default_factory=dict)  # only skills this person rated
    global_gain: Mapping[str, float] = field(default_factory=dict)


class SkillLike(Protocol):
    id: str
    helps_with: Sequence[str]
    triggers: Sequence[str]
    avoid_if: Sequence[str]
    requires: Sequence[str]


class LibraryLike(Protocol):
    skills: Mapping[str, SkillLike]

    def for_state(self, state: str) -> Sequence[SkillLike]: ...


@dataclass(frozen=True)
class _Pattern:
    words: tuple[str, ...]  # literal | "prefix*" | "~" (gap 0-2) | "#" (number)
    votes: tuple[tuple[str, float], ...]  # (state or "none", weight)
    label: str


@dataclass
class _Cue:
    start: int
    end: int
    pattern: _Pattern


class Matcher:
    """Classifies texts into distress states and ranks the library's skills for a participant.

    Build one per loaded library and share it: indexes are built once, and per-word caches
    (SMS spelling, typo correction) grow only with the vocabulary seen, up to a fixed bound.
    """

    _CACHE_LIMIT = 50_000

    def __init__(self, library: LibraryLike) -> None:
        self._library = library
        lexicon: list[_Pattern] = []
        for state, rows in _LEXICON.items():
            for weight, spec in rows:
                lexicon.extend(_compile(spec, state, weight))
        for weight, spec in _NONE_LEXICON:
            lexicon.extend(_compile(spec, NONE, weight))
        lexicon.extend(_compile(_NEUTRAL, NONE, 0.0))
        self._lexicon = _Index(_merge(lexicon))
        self._trigger_skills: dict[tuple[str, ...], list[str]] = {}
        triggers = self._compile_triggers(library)
        self._triggers = _Index(triggers)
        self._typo_targets = _typo_targets(lexicon)
        self._collapse_targets = frozenset(
            p.words[0]
            for p in lexicon
            if len(p.words) == 1 and max((w for s, w in p.votes if s != NONE), default=0.0) >= 2.0
        )
        self._deletes = _delete_index(w for w in self._typo_targets if len(w) >= 5)
        self._token_cache: dict[str, tuple[tuple[str, ...], str | None]] = {}
        # Skills that route by question rather than by feeling ("what is cbt"): psychoeducation cards.
        self._cards = [
            (f" {' '.join(self._plain_tokens(t))} ", skill_id)
            for skill_id, skill in sorted(library.skills.items())
            if not skill.helps_with
            for t in skill.triggers
        ]

    def info_card(self, text: str) -> str | None:
        """The id of an information card whose trigger phrase the text contains ("what is tms?")."""
        padded = f" {' '.join(self._plain_tokens(text))} "
        return next((skill_id for phrase, skill_id in self._cards if phrase.strip() and phrase in padded), None)

    # ---- classification -------------------------------------------------------------------
    def classify(self, text: str) -> StateMatch:
        """The single best state for `text`, or "none".

        "none" when no state reaches THRESHOLD or the no-distress cues outweigh the best state
        by NONE_MARGIN. Deterministic; the evidence lists every cue found (including negated
        ones and those of losing states), lexicon cues in text order, then trigger phrases.
        """
        scores: dict[str, float] = {}
        evidence: list[str] = []
        self._raw_cues(text, scores, evidence)
        toks = self._tokens(text, evidence)
        self._score_lexicon(toks, scores, evidence)
        for cue in self._triggers.scan(toks):
            key = cue.pattern.words
            for state, weight in cue.pattern.votes:
                scores[state] = scores.get(state, 0.0) + weight
            evidence.append(f"trigger:{cue.pattern.label}->{'+'.join(self._trigger_skills[key])}")
        return _decide(scores, tuple(evidence))

    def _raw_cues(self, text: str, scores: dict[str, float], evidence: list[str]) -> None:
        """Emoji and emoticons: normalisation erases them, so they are read from the raw text."""
        if not text.isascii():
            for ch in dict.fromkeys(text):
                hit = _EMOJI.get(ch)
                if hit is not None:
                    count = min(text.count(ch), 3)
                    weight = hit[1] * (1.0 + 0.25 * (count - 1))
                    scores[hit[0]] = scores.get(hit[0], 0.0) + weight
                    evidence.append(f"emoji:{ch}->{hit[0]}")
                elif ch in _NONE_EMOJI:
                    scores[NONE] = scores.get(NONE, 0.0) + 1.0
                    evidence.append(f"none:{ch}")
        if ":" in text or ";" in text:
            for pattern, state, weight in _EMOTICONS:
                if pattern.search(text):
                    scores[state] = scores.get(state, 0.0) + weight
                    evidence.append(f"emoticon->{state}")

    def _tokens(self, text: str, evidence: list[str]) -> list[str]:
        """Normalised tokens with clause markers, SMS spellings expanded and typos corrected."""
        marked = _TIME.sub(r"\1 \2", _CLAUSE_PUNCT.sub(f" {_CLAUSE} ", text))
        raw = normalise(marked).split()
        out: list[str] = []
        i = 0
        while i < len(raw):
            tok = raw[i]
            if i + 1 < len(raw):
                pair = _PAIRS.get((tok, raw[i + 1]))
                if pair is not None:
                    out.append(pair)
                    i += 2
                    continue
            expanded, fixed = self._token(tok)
            if fixed is not None:
                evidence.append(f"typo:{tok}->{fixed}")
            out.extend(expanded)
            i += 1
        return out

    def _token(self, tok: str) -> tuple[tuple[str, ...], str | None]:
        cached = self._token_cache.get(tok)
        if cached is not None:
            return cached
        result = self._resolve_token(tok)
        if len(self._token_cache) >= self._CACHE_LIMIT:
            self._token_cache.clear()
        self._token_cache[tok] = result
        return result

    def _resolve_token(self, tok: str) -> tuple[tuple[str, ...], str | None]:
        sms = _SMS.get(tok)
        if sms is not None:
            return tuple(sms.split()), None
        if (
            len(tok) < 4
            or tok in _KNOWN_WORDS
            or tok in self._lexicon.vocabulary
            or tok in self._triggers.vocabulary
            or not tok.isalpha()
            or self._lexicon.has_prefix_match(tok)
        ):
            return (tok,), None
        # "sadd", "madd": a doubled letter left over after elongation squeezing.
        for j in range(len(tok) - 1):
            if tok[j] == tok[j + 1]:
                single = tok[:j] + tok[j + 1 :]
                if single in self._collapse_targets:
                    return (single,), single
        if len(tok) < 5:
            return (tok,), None
        fixed = self._correct(tok)
        return ((fixed,), fixed) if fixed else ((tok,), None)

    def _correct(self, tok: str) -> str | None:
        """The emotion word `tok` is most likely a typo of, or None.

        Targets are the lexicon's single-word cues (weight >= 2) and a few full forms of its
        stems. Accepted: edit distance 1 (2 for words of 9+ letters) by rapidfuzz's OSA
        distance, which counts a swap of neighbours as one edit ("lonley"); same first letter;
        a substituted letter must be a keyboard neighbour of the intended one, because a
        non-neighbour substitution usually spells another real word ("teams", "class",
        "lived"). Candidates come from a precomputed deletion index. Ties: fewest edits, then
        the longer word (dropped letters are the commonest thumb typo), then alphabetical.
        """
        limit = 2 if len(tok) >= 9 else 1
        found: set[str] = set(self._deletes.get(tok, ()))
        for variant in _deletions(tok):
            found.update(self._deletes.get(variant, ()))
        best: tuple[int, int, str] | None = None
        for cand in found:
            if cand[0] != tok[0] or abs(len(cand) - len(tok)) > limit or len(cand) < 5:
                continue
            dist = OSA.distance(tok, cand, score_cutoff=limit)
            if dist > limit or _inflection(tok, cand) or not _plausible_typo(tok, cand, dist):
                continue
            key = (dist, -len(cand), cand)
            if best is None or key < best:
                best = key
        return best[2] if best else None

    def _score_lexicon(self, toks: list[str], scores: dict[str, float], evidence: list[str]) -> None:
        for cue in self._lexicon.scan(toks):
            label = " ".join(toks[cue.start : cue.end])  # the words as written, not the pattern
            negator = _negated(toks, cue.start)
            is_none_cue = all(state == NONE for state, _ in cue.pattern.votes)
            if negator is not None:
                evidence.append(f"negated:{label}")
                if is_none_cue and label.rsplit(" ", 1)[-1] in _POSITIVE_WORDS:
                    scores["sadness"] = scores.get("sadness", 0.0) + _NEGATED_POSITIVE_WEIGHT
                    evidence.append(f"lexicon:not {label}->sadness")
                elif not is_none_cue and _resolved(toks, negator, cue.end):
                    scores[NONE] = scores.get(NONE, 0.0) + _RESOLVED_WEIGHT
                    evidence.append("none:resolved")
                continue
            factor, modifiers = _intensity(toks, cue.start, cue.end)
            evidence.extend(modifiers)
            for state, weight in cue.pattern.votes:
                scores[state] = scores.get(state, 0.0) + weight * (factor if state != NONE else 1.0)
                evidence.append(f"none:{label}" if state == NONE else f"lexicon:{label}->{state}")

    # ---- skill ranking --------------------------------------------------------------------
    def rank_skills(
        self,
        state: str,
        *,
        flags: frozenset[str] = frozenset(),
        history: SkillHistory | None = None,
        text: str = "",
    ) -> list[str]:
        """Skill ids for `state`, best first; [] for "none" or when no skill is allowed.

        Only skills whose avoid_if flags are all absent and requires flags all present are
        returned. Score: the participant's own mean rating drop for the skill if they rated it,
        else the mean across everyone, else 0; plus a small bonus when `text` hits one of the
        skill's trigger phrases. The last three skills used go to the back (the most recent
        last). Ties keep the library's order for the state, so the result is deterministic.
        """
        if state == NONE:
            return []
        history = history or SkillHistory()
        allowed = [s for s in self._library.for_state(state) if _allowed(s, flags)]
        hit = self.triggered_skills(text) if text else frozenset()
        recent = list(dict.fromkeys(history.recent[:3]))

        def score(skill: SkillLike) -> float:
            if skill.id in history.own_gain:
                base = float(history.own_gain[skill.id])
            else:
                base = float(history.global_gain.get(skill.id, 0.0))
            return base + (TRIGGER_BONUS if skill.id in hit else 0.0)

        order = {skill.id: i for i, skill in enumerate(allowed)}
        fresh = sorted((s for s in allowed if s.id not in recent), key=lambda s: (-score(s), order[s.id]))
        stale = sorted((s for s in allowed if s.id in recent), key=lambda s: -recent.index(s.id))
        return [s.id for s in fresh] + [s.id for s in stale]

    def triggered_skills(self, text: str) -> frozenset[str]:
        """Ids of the skills whose trigger phrases occur in `text`."""
        toks = self._tokens(text, [])
        return frozenset(
            skill for cue in self._triggers.scan(toks) for skill in self._trigger_skills[cue.pattern.words]
        )

    def _compile_triggers(self, library: LibraryLike) -> list[_Pattern]:
        """One pattern per distinct trigger phrase, voting for the states of every skill that lists it.

        A skill's first helps_with state gets the full trigger weight and its other states 60%:
        the library lists a skill's main use first.
        """
        votes: dict[tuple[str, ...], dict[str, float]] = {}
        for skill_id in sorted(library.skills):
            skill = library.skills[skill_id]
            states = [s for s in skill.helps_with if s in STATES]
            for trigger in skill.triggers:
                words = tuple(self._plain_tokens(trigger))
                if not words or not states:
                    continue
                skills = self._trigger_skills.setdefault(words, [])
                if skill_id not in skills:
                    skills.append(skill_id)
                phrase_votes = votes.setdefault(words, {})
                for rank, state in enumerate(states):
                    weight = TRIGGER_WEIGHT if rank == 0 else TRIGGER_WEIGHT * 0.6
                    phrase_votes[state] = max(phrase_votes.get(state, 0.0), weight)
        return [_Pattern(words, tuple(sorted(v.items())), " ".join(words)) for words, v in votes.items()]

    @staticmethod
    def _plain_tokens(text: str) -> list[str]:
        """Tokens of a trigger phrase, spelled the way `_tokens` spells a text (no typo step)."""
        raw = normalise(text).split()
        out: list[str] = []
        i = 0
        while i < len(raw):
            pair = _PAIRS.get((raw[i], raw[i + 1])) if i + 1 < len(raw) else None
            if pair is not None:
                out.append(pair)
                i += 2
                continue
            out.extend(_SMS.get(raw[i], raw[i]).split())
            i += 1
        return out


# --------------------------------------------------------------------------------------------
# Pattern compilation and scanning
# --------------------------------------------------------------------------------------------
def _split_top(spec: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses."""
    parts, depth, current = [], 0, []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and spec.startswith(sep, i):
            parts.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _expand(entry: str) -> list[tuple[str, ...]]:
    """All word sequences an entry stands for: "(a|b c)? d" -> [(a, d), (b, c, d), (d,)]."""
    entry = entry.strip()
    if not entry:
        return [()]
    if entry.startswith("("):
        close = _closing_paren(entry)
        inner, rest = entry[1:close], entry[close + 1 :]
        optional = rest.startswith("?")
        rest = rest[1:] if optional else rest
        heads = [w for alt in _split_top(inner, "|") for w in _expand(alt)]
        if optional:
            heads.append(())
        tails = _expand(rest)
        return [h + t for h in heads for t in tails]
    head, _, rest = entry.partition(" ")
    return [(head, *t) for t in _expand(rest)]


def _closing_paren(entry: str) -> int:
    """Index of the parenthesis closing the one that opens `entry`."""
    depth = 0
    for j, ch in enumerate(entry):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return j
    raise ValueError(f"unbalanced parentheses in lexicon entry {entry!r}")


def _compile(spec: str, state: str, weight: float) -> list[_Pattern]:
    """Patterns of one lexicon block: placeholders filled, line breaks and indentation ignored."""
    spec = " ".join(spec.replace("{PEOPLE}", _PEOPLE).replace("{FEEL}", _FEEL).split())
    out = []
    for entry in _split_top(spec, " | "):
        for words in _expand(entry):
            if words:
                out.append(_Pattern(words, ((state, weight),), " ".join(words)))
    return out


def _merge(patterns: Iterable[_Pattern]) -> list[_Pattern]:
    """One pattern per word sequence; a sequence listed for two states votes for both.

    Listed twice for the same state, the higher weight wins.
    """
    merged: dict[tuple[str, ...], dict[str, float]] = {}
    for p in patterns:
        votes = merged.setdefault(p.words, {})
        for state, weight in p.votes:
            votes[state] = max(votes.get(state, 0.0), weight)
    return [_Pattern(words, tuple(sorted(v.items())), " ".join(words)) for words, v in merged.items()]


def _is_number(tok: str) -> bool:
    return tok.isdigit() or tok in _NUMBER_WORDS


class _Node:
    """One step of the phrase trie: edges by word, by word prefix, for a number, for a gap."""

    __slots__ = ("words", "prefixes", "number", "gap", "patterns")

    def __init__(self) -> None:
        self.words: dict[str, _Node] = {}
        self.prefixes: dict[str, _Node] = {}
        self.number: _Node | None = None
        self.gap: _Node | None = None
        self.patterns: list[_Pattern] = []

    def child(self, word: str) -> _Node:
        if word == "#":
            self.number = self.number or _Node()
            return self.number
        if word == "~":
            self.gap = self.gap or _Node()
            return self.gap
        table = self.prefixes if word.endswith("*") else self.words
        key = word.rstrip("*")
        node = table.get(key)
        if node is None:
            node = table[key] = _Node()
        return node


class _Index:
    """Patterns in a word trie, for a longest-match scan that costs about one dict lookup per word."""

    def __init__(self, patterns: Iterable[_Pattern]) -> None:
        self.root = _Node()
        self.vocabulary: set[str] = set()
        self._prefix_words: set[str] = set()
        for p in patterns:
            node = self.root
            for w in p.words:
                node = node.child(w)
                if w.endswith("*"):
                    self._prefix_words.add(w[:-1])
                elif w not in ("~", "#"):
                    self.vocabulary.add(w)
            node.patterns.append(p)
        self._prefix_lengths = sorted({len(p) for p in self._prefix_words})
        self._root_lengths = sorted({len(p) for p in self.root.prefixes})
        self._starts: dict[str, list[_Node]] = {}

    def has_prefix_match(self, tok: str) -> bool:
        return any(tok[:n] in self._prefix_words for n in self._prefix_lengths if n <= len(tok))

    def _start_nodes(self, tok: str) -> list[_Node]:
        """Trie nodes one word in from the root for `tok` (cached: the root fans out widely)."""
        found = self._starts.get(tok)
        if found is None:
            root = self.root
            found = [root.words[tok]] if tok in root.words else []
            found.extend(root.prefixes[tok[:n]] for n in self._root_lengths if tok[:n] in root.prefixes)
            if root.number is not None and _is_number(tok):
                found.append(root.number)
            if len(self._starts) < 50_000:
                self._starts[tok] = found
        return found

    def scan(self, toks: Sequence[str]) -> list[_Cue]:
        """Non-overlapping cues, left to right, longest match first at each position.

        Every pattern that reaches the longest end at a position is kept (so a phrase listed
        for two states votes for both), and the scan resumes after it.
        """
        cues: list[_Cue] = []
        i, n = 0, len(toks)
        while i < n:
            best: list[tuple[int, _Pattern]] = []
            for node in self._start_nodes(toks[i]):
                _walk(node, toks, i + 1, 0, best)
            if best:
                end = max(e for e, _ in best)
                seen: set[tuple[str, ...]] = set()
                for e, p in best:
                    if e == end and p.words not in seen:
                        seen.add(p.words)
                        cues.append(_Cue(i, end, p))
                i = end
            else:
                i += 1
        return cues


def _walk(node: _Node, toks: Sequence[str], j: int, skipped: int, out: list[tuple[int, _Pattern]]) -> None:
    """Collect (end, pattern) for every pattern completed from `node` at word `j` onwards.

    Inside a phrase up to two filler words are skipped ("could *really* use a hit"); a gap
    "~" skips 0-2 words; nothing crosses a clause marker.
    """
    for p in node.patterns:
        out.append((j, p))
    if node.gap is not None:
        for k in range(j, min(j + 3, len(toks) + 1)):
            if k > j and toks[k - 1] == _CLAUSE:
                break
            _walk(node.gap, toks, k, skipped, out)
    if j >= len(toks):
        return
    tok = toks[j]
    nxt = node.words.get(tok)
    if nxt is not None:
        _walk(nxt, toks, j + 1, skipped, out)
    if node.prefixes:
        for prefix, child in node.prefixes.items():
            if tok.startswith(prefix):
                _walk(child, toks, j + 1, skipped, out)
    if node.number is not None and _is_number(tok):
        _walk(node.number, toks, j + 1, skipped, out)
    if skipped < 2 and tok in _FILLERS and (node.words or node.prefixes or node.number):
        _walk(node, toks, j + 1, skipped + 1, out)


def _typo_targets(patterns: Iterable[_Pattern]) -> frozenset[str]:
    """Words a typo may be corrected to: strong single-word cues, the words of distress phrases
    and full forms of stems; never a "none" cue, never shorter than 5 letters."""
    words: set[str] = set(_STEM_FORMS)
    for p in patterns:
        strength = max((w for s, w in p.votes if s != NONE), default=0.0)
        if len(p.words) == 1 and strength >= 2.0 or len(p.words) > 1 and strength > 0.0:
            words.update(w for w in p.words if w.isalpha() and len(w) >= 5)
    return frozenset(words)


_VOWELS = frozenset("aeiouy")
_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POS = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}


def _neighbours(a: str, b: str) -> bool:
    (ra, ca), (rb, cb) = _KEY_POS.get(a, (9, 99)), _KEY_POS.get(b, (-9, -99))
    return abs(ra - rb) <= 1 and abs(ca - cb) <= 1


def _inflection(tok: str, cand: str) -> bool:
    """"points" is a form of "point", not a typo of it."""
    short, long_ = sorted((tok, cand), key=len)
    return long_.startswith(short) and long_[len(short) :] in {"s", "es", "d", "ed", "ing", "er", "ers", "ly"}


def _plausible_typo(tok: str, cand: str, dist: int) -> bool:
    """Every substituted letter is a keyboard neighbour, or a vowel for a vowel in a word of 8+
    letters ("hyperventalating"); swaps, drops and extra letters always pass."""
    if Levenshtein.distance(tok, cand) > dist:
        return True  # OSA found a cheaper path through a transposition: "lonley", "anxeity"
    long_word = len(cand) >= 8
    return all(
        _neighbours(tok[src], cand[dst]) or long_word and tok[src] in _VOWELS and cand[dst] in _VOWELS
        for op, src, dst in Levenshtein.editops(tok, cand)
        if op == "replace"
    )


def _deletions(word: str) -> set[str]:
    return {word[:j] + word[j + 1 :] for j in range(len(word))}


def _delete_index(words: Iterable[str]) -> dict[str, list[str]]:
    """Map each one-letter deletion of a word (and the word itself) to the words it came from."""
    index: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        for variant in {word, *_deletions(word)}:
            index.setdefault(variant, []).append(word)
    return index


# --------------------------------------------------------------------------------------------
# Negation, intensity, decision
# --------------------------------------------------------------------------------------------
def _negated(toks: Sequence[str], start: int) -> int | None:
    """Index of the negator governing the cue at `start`, or None.

    The negator must be at most 3 words back with only linking words between ("dont feel
    sad", "not even that angry"); another content word ends its scope ("not funny, just sad").
    """
    for j in range(start - 1, max(start - 4, -1), -1):
        tok = toks[j]
        if tok in _NEGATION_BREAKERS:
            return None
        if tok not in _NEGATORS and tok not in _NEGATION_SCOPE:
            return None
        if tok in _NEGATORS:
            between = toks[j + 1 : start]
            if tok == "never" and _NEVER_INTENSE.intersection(between):
                return None
            if between[:1] and between[0] in _NOT_JUST:
                return None
            if j > 0 and toks[j - 1] in _EFFORT:
                return None
            return j
    return None


def _resolved(toks: Sequence[str], negator: int, end: int) -> bool:
    """'no longer angry', 'not anxious anymore', 'not stressed at all': the feeling has passed."""
    if toks[negator] == "no" and negator + 1 < len(toks) and toks[negator + 1] == "longer":
        return True
    return any(t in _RESOLUTION for t in toks[end : end + 3])


def _intensity(toks: Sequence[str], start: int, end: int) -> tuple[float, list[str]]:
    factor, notes = 1.0, []
    for j in range(max(start - 2, 0), start):
        tok = toks[j]
        if tok in _PRE_INTENSIFIERS:
            factor = _INTENSIFY
            notes.append(f"intensifier:{tok}")
        elif tok in _SOFTENERS:
            factor = _SOFTEN
            notes.append(f"softener:{tok}")
    if end < len(toks) and toks[end] in _POST_INTENSIFIERS:
        factor = max(factor, 1.0) * _INTENSIFY
        notes.append(f"intensifier:{toks[end]}")
    elif tuple(toks[end : end + 2]) in _POST_INTENSIFIER_PAIRS:
        factor = max(factor, 1.0) * _INTENSIFY
        notes.append(f"intensifier:{' '.join(toks[end : end + 2])}")
    return factor, notes


def _decide(scores: Mapping[str, float], evidence: tuple[str, ...]) -> StateMatch:
    best = max(
        (s for s in STATES if scores.get(s, 0.0) > 0.0),
        key=lambda s: (scores[s], -_RANK[s]),
        default=None,
    )
    none_score = scores.get(NONE, 0.0)
    if best is None or scores[best] < THRESHOLD or none_score >= NONE_MARGIN * scores[best]:
        return StateMatch(NONE, round(none_score, 3), evidence)
    return StateMatch(best, round(scores[best], 3), evidence)


def _allowed(skill: SkillLike, flags: frozenset[str]) -> bool:
    return not (set(skill.avoid_if) & flags) and set(skill.requires) <= flags
