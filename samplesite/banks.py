"""Word and sentence banks for the sample site's English and Russian text.

Russian fragments are stored already inflected (masculine singular subjects with
matching past-tense verbs) so that plain concatenation yields grammatical text
without a morphology library.
"""

from __future__ import annotations

SECTIONS: list[tuple[str, str]] = [
    ("politics", "Politics"),
    ("economy", "Economy"),
    ("military", "Military"),
    ("world", "World"),
    ("analytics", "Analytics"),
]

EN_SUBJECTS = [
    "The defence minister",
    "A Kremlin spokesman",
    "The Belarusian leader",
    "A senior NATO official",
    "The head of the State Department",
    "An adviser to the Ukrainian president",
    "A spokesman for the European Commission",
    "The chief of the general staff",
    "A source in the government",
    "The author of the report",
    "A military analyst",
    "The newspaper's correspondent",
    "A member of the parliamentary committee",
    "The Chinese foreign ministry",
    "An economist at a Moscow university",
    "The mayor of Kiev",
]

EN_VERBS = [
    "said", "stressed", "noted", "claimed", "told reporters", "acknowledged",
    "warned", "insisted", "reported", "pointed out", "suggested", "admitted",
]

EN_CLAUSES = [
    "the negotiations would continue in the coming weeks",
    "the situation on the border remains tense",
    "the parties had discussed the formation of a single defensive space",
    "the new sanctions package would hit European industry first",
    "the air defence systems had intercepted most of the drones",
    "gas supplies would be paid for under the old agreement",
    "the joint exercises were planned long before the visit",
    "the Western press had exaggerated the scale of the losses",
    "the budget deficit would grow by the end of the year",
    "the alliance was not ready for a long confrontation",
    "the talks in Minsk had produced no written documents",
    "the energy infrastructure had been damaged in several regions",
    "the grain corridor could be reopened under certain conditions",
    "the defence industry had doubled the output of shells",
    "the elections would be held on schedule",
    "the central bank had no plans to raise the key rate",
    "military aid to Kiev would be reduced next spring",
    "the new fighter programme was ahead of schedule",
    "the rhetoric in Washington had become noticeably softer",
    "the contract for the supply of tanks had been signed in secret",
    "the mobilisation reserve had not yet been used",
    "a ceasefire was not on the agenda",
    "the price ceiling on oil had failed to work",
    "the northern border was being reinforced",
]

EN_TAILS = [
    "", "", "", " in an interview with local media", " on Tuesday", " at a briefing in Brussels",
    ", citing its own sources,", " without giving further details", " late on Sunday",
    ", according to the published transcript,", " during a visit to the region",
]

EN_STANDALONE = [
    "Many observers drew attention to the timing of the statement.",
    "It should be noted that this is an absolutely new subject for discussion.",
    "The Western press talks a lot about this, but forgets the context.",
    "At the same time, the figures have not been independently confirmed.",
    "Of course, such assistance would not be gratuitous.",
    "The official position has not changed since the spring.",
    "The markets reacted to the news with a slight decline.",
    "Neither side commented on the reports on Wednesday.",
    "The meeting was overgrown with speculation and hypotheses.",
    "Analysts expect the next round to be even more difficult.",
    "The details of the agreement were not disclosed.",
    "This, in turn, raises questions about the supply lines.",
]

EN_TITLE_TOPICS = [
    "The secret of Putin's visit to Minsk", "Lame duck", "Without carrot and stick",
    "Industrial design", "The price of the oil ceiling", "A winter without gas",
    "The northern front", "A new defensive space", "The drone war",
    "Grain and diplomacy", "The Su-57 programme", "Kiev's air defence",
    "The sanctions trap", "A quiet mobilisation", "The Baltic question",
]

EN_TITLE_CLAIMS = [
    "a danger signal for Ukraine", "what the West did not notice",
    "Russia has deprived America of its usual levers", "harmony of beauty and functionality",
    "why Europe is nervous", "the experts were divided", "who really benefits",
    "the Western press appreciated the result", "a dangerous precedent",
    "the numbers behind the headlines", "what the talks in Minsk changed",
    "the alliance is running out of shells",
]

EN_TITLE_FULL = [
    "Hundreds of NATO troops died after another unsuccessful raid",
    "In one blow, Russia deprived the Armed Forces of a large stock of missiles",
    "The expert said that competition will make the defence industry healthier",
    "Will Biden agree to invite Ukraine to NATO",
    "Significant increase in strike potential, the Western press says",
    "Poland asks for more air defence systems on its eastern border",
    "Gas prices in Europe fall for the third week in a row",
]

RU_SUBJECTS = [
    "Министр обороны", "Представитель Кремля", "Глава Белоруссии", "Источник в правительстве",
    "Военный эксперт", "Автор доклада", "Пресс-секретарь президента", "Начальник генштаба",
    "Депутат Госдумы", "Аналитик издания", "Посол США", "Мэр Киева", "Официальный представитель МИД",
    "Экономист Высшей школы экономики", "Корреспондент газеты",
]

RU_VERBS = [
    "заявил", "подчеркнул", "отметил", "сообщил журналистам", "признал", "предупредил",
    "напомнил", "уточнил", "рассказал", "допустил",
]

RU_CLAUSES = [
    "переговоры продолжатся в ближайшие недели",
    "ситуация на границе остаётся напряжённой",
    "стороны обсудили формирование единого оборонного пространства",
    "новый пакет санкций ударит прежде всего по европейской промышленности",
    "системы ПВО перехватили большую часть беспилотников",
    "поставки газа будут оплачиваться по прежнему соглашению",
    "совместные учения были запланированы задолго до визита",
    "западная пресса преувеличила масштаб потерь",
    "дефицит бюджета вырастет к концу года",
    "альянс не готов к долгому противостоянию",
    "переговоры в Минске не закончились подписанием документов",
    "энергетическая инфраструктура повреждена в нескольких регионах",
    "оборонная промышленность удвоила выпуск снарядов",
    "выборы пройдут в установленный срок",
    "Центробанк не планирует повышать ключевую ставку",
    "военная помощь Киеву сократится следующей весной",
    "программа нового истребителя опережает график",
    "риторика Вашингтона стала заметно мягче",
    "контракт на поставку танков был подписан в тайне",
    "прекращение огня пока не стоит на повестке дня",
    "потолок цен на нефть не сработал",
    "северная граница укрепляется",
]

RU_TAILS = [
    "", "", "", " в интервью местным СМИ", " во вторник", " на брифинге в Брюсселе",
    ", ссылаясь на собственные источники", " без подробностей", " поздно вечером в воскресенье",
    " во время поездки в регион",
]

RU_STANDALONE = [
    "Многие наблюдатели обратили внимание на время этого заявления.",
    "Следует отметить, что это абсолютно новая тема для обсуждения.",
    "Западная пресса много говорит об этом, но «забывает» о контексте.",
    "При этом цифры пока не подтверждены независимыми источниками.",
    "Разумеется, такая помощь не была бы безвозмездной.",
    "Официальная позиция не менялась с весны.",
    "Рынки отреагировали на новость небольшим снижением.",
    "Ни одна из сторон не прокомментировала эти сообщения в среду.",
    "Встреча обросла слухами и гипотезами.",
    "Аналитики ожидают, что следующий раунд будет ещё сложнее.",
    "Подробности соглашения не раскрываются.",
    "Это, в свою очередь, вызывает вопросы о линиях снабжения.",
]

RU_TITLE_TOPICS = [
    "Тайна визита в Минск", "Хромая утка", "Без кнута и пряника", "ПВО: мысли вслух",
    "Цена нефтяного потолка", "Зима без газа", "Северный фронт", "Война дронов",
    "Зерно и дипломатия", "Программа Су-57", "Санкционная ловушка", "Балтийский вопрос",
    "О «западной» танковой школе",
]

RU_TITLE_CLAIMS = [
    "сигнал опасности для Украины", "чего не заметил Запад", "кто на самом деле выигрывает",
    "эксперты разошлись во мнениях", "опасный прецедент", "цифры за заголовками",
    "что изменили переговоры в Минске", "у альянса заканчиваются снаряды",
    "фантазии одного «известного политолога»",
]

RU_TITLE_FULL = [
    "Непрерывная связь – ключ к победе",
    "О чём умолчал Зеленский",
    "«Снаряд прошил весь танк и вышел через корму»",
    "О поражении (в смысле - выводе из строя) танков",
    "Польша просит больше систем ПВО на восточной границе",
    "Цены на газ в Европе снижаются третью неделю подряд",
]

EN_AUTHORS = [
    "John Hudson", "Anna Keller", "Mark Episkopos", "Peter Rowe", "Laura Mills",
    "David Ignatius", "Sarah Wilson", "Tom Cooper", "Helen Grant", "Robert Kagan",
]

RU_AUTHORS = [
    "Павел Иванов", "Андрей Соколов", "Игорь Петров", "Дмитрий Кузнецов", "Сергей Волков",
    "Алексей Морозов", "Николай Лебедев", "Михаил Орлов", "Олег Смирнов", "Виктор Козлов",
]

IMAGE_CREDITS = [
    "РИА Новости Павел Бедняков", "РИА Новости Сергей Гунеев", "ТАСС Сергей Бобылев",
    "AP Photo Evan Vucci", "Reuters Maxim Shemetov", "Getty Images Chip Somodevilla",
    "Пресс-служба Минобороны", "AFP Sergei Supinsky",
]

SOURCES: list[tuple[str, str]] = [
    ("Dune-e Ektesad", "https://www.donya-e-eqtesad.example/news/"),
    ("Akharin khabar", "https://akharinkhabar.example/politics/"),
    ("The American Conservative", "https://www.theamericanconservative.example/"),
    ("infoBRICS", "https://infobrics.example/post/"),
    ("Focus.ua", "https://focus.example/politics/"),
    ("The National Interest", "https://nationalinterest.example/feature/"),
    ("Global Times", "https://www.globaltimes.example/page/"),
    ("Le Figaro", "https://www.lefigaro.example/international/"),
]

TAGS = [
    "Vladimir Putin", "Alexander Lukashenko", "NATO", "Ukraine", "Belarus", "USA", "China",
    "Poland", "sanctions", "gas", "air defence", "drones", "Su-57", "European Union",
    "Владимир Зеленский", "ВПК", "ПВО", "танки", "экономика", "Минобороны",
]

THREAD_TITLES = [
    "О поражении (в смысле - выводе из строя) танков",
    "Industrial design: harmony of beauty and functionality",
    "«Снаряд прошил весь танк и вышел через корму»",
    "Without carrot and stick. Russia has deprived America of its usual levers of influence",
    "О \"западной\" танковой школе.",
    "О чём умолчал Зеленский, или фантазии одного «известного политолога»",
    "The expert said that combining the defence complex with the national one will help",
    "ПВО: мысли вслух (часть 2)",
    "Hundreds of NATO troops died after another unsuccessful safari (infoBRICS, China)",
    "In one blow, Russia deprived the Armed Forces of a large stock of missiles",
    "Непрерывная связь – ключ к победе",
    "\"Significant increase in strike potential\": the Western press appreciated the Su-57",
    "Хромая утка: согласится ли Байден пригласить Украину в НАТО (Фокус.ua, Украина)",
    "Lame Duck: Will Biden agree to invite Ukraine to NATO (Focus.ua, Ukraine)",
    "ПВО: мысли вслух",
    "Танки на морозе: опыт зимней эксплуатации",
    "Почему «Армата» так и не пошла в серию",
    "The drone war over the Black Sea",
    "Артиллерия против дронов: кто кого",
    "Grain corridor: who really benefits",
]

THREAD_SUFFIXES_EN = ["", "", " (part 2)", " — discussion", " again"]
THREAD_SUFFIXES_RU = ["", "", " (часть 3)", " — обсуждение", ": продолжение"]

AD_TEXTS = [
    "Реклама. Подписка на журнал «Национальная оборона» со скидкой",
    "Реклама. Новый внедорожник — тест-драйв в салонах города",
    "Реклама. Курсы английского языка онлайн",
]

# Latin transliteration for slugs (a simplified GOST 7.79-B table).
TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}
