"""The life-threat detector and the safety policy: every chief complaint in Indonesian,
Javanese ngoko and krama, English and SMS slang, told by symptoms and scenes; the hard
negatives (other senses, past or handled events, fears, jokes); uncertain -> P1 with questions."""

from __future__ import annotations

import pytest

from schemas.events import CallerSignals
from schemas.vocabulary import Category, Channel, Priority
from services.triage.classifier import EMERGENCY_CATEGORIES, Classifier


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


# (complaint, text) by language form: id = Indonesian, jv = Javanese ngoko, kr = krama,
# en = English, sms = SMS slang and typos.
THREATS = [
    ("breathing", "id", "anak saya tidak bernapas, badannya lemas"),
    ("breathing", "jv", "bojoku ora iso ambegan, lambene biru"),
    ("breathing", "kr", "bapak kula mboten saged ambekan, lambenipun biru"),
    ("breathing", "en", "my grandmother is not breathing properly, her lips are blue"),
    ("breathing", "sms", "tlg bpk sy gk npas, bibir biru"),
    ("unconscious", "id", "ibu saya pingsan di dapur, dipanggil tidak menjawab"),
    ("unconscious", "jv", "simbah ambruk ning kamar mandi, dijawil ora mangsuli"),
    ("unconscious", "kr", "bapak kula semaput, mboten saged dipun gugah"),
    ("unconscious", "en", "a man collapsed at the market and is unresponsive"),
    ("unconscious", "sms", "org tergeletak di jln gk sadar"),
    ("chest_pain", "id", "suami saya nyeri dada kiri sampai ke lengan, keringat dingin"),
    ("chest_pain", "jv", "bapakku dadane loro kaya ketindih watu, kringete adem"),
    ("chest_pain", "kr", "bapak kula jajanipun sakit sanget kados ketindih watu"),
    ("chest_pain", "en", "my father has crushing chest pain and is sweating"),
    ("chest_pain", "sms", "tlg ayah sy dada skt bgt kringet dingin"),
    # the pain named before the chest
    ("chest_pain", "en", "my father has a crushing pain in his chest going to his jaw, he is pale"),
    ("chest_pain", "id", "ibu sakit banget di bagian dada, keringetan"),
    ("chest_pain", "jv", "simbah sambat sakit ing dada"),
    ("stroke", "id", "kakek tiba-tiba bicara pelo dan tangan kanan tidak bisa diangkat"),
    ("stroke", "jv", "mbahku ngomonge pelo, raine mencong"),
    ("stroke", "kr", "bapak kula ngendikane mboten cetha, cangkemipun mencong"),
    ("stroke", "en", "her face is drooping and her speech is slurred"),
    ("stroke", "sms", "ibu tb2 mulut mencong, lumpuh sblh"),
    ("bleeding", "id", "tangannya tersayat mesin, darah mengucur tidak berhenti"),
    ("bleeding", "jv", "sikile kena arit, getihe metu terus ora mandeg"),
    ("bleeding", "kr", "suku kula kenging arit, ludiranipun medal kathah sanget"),
    ("bleeding", "en", "he cut his leg with a chainsaw and is bleeding heavily"),
    ("bleeding", "sms", "kpl bocor drh bnyk bgt"),
    ("pregnancy", "id", "istri saya hamil 8 bulan, keluar darah banyak dan lemas"),
    ("pregnancy", "jv", "bojoku meteng, getihe metu akeh banget"),
    ("pregnancy", "en", "my wife is pregnant and bleeding a lot, she feels faint"),
    ("pregnancy", "sms", "bumil pendarahan, lemes bgt"),
    ("seizure", "id", "anak saya kejang sudah 10 menit tidak berhenti"),
    ("seizure", "jv", "anakku kejang ket mau durung mandeg"),
    ("seizure", "en", "my son has been having a seizure for ten minutes and it won't stop"),
    ("seizure", "sms", "ank sy kejang2 trs gk brhenti"),
    ("poisoning", "id", "petani gemetar dan ngiler setelah menyemprot pestisida, lalu pingsan"),
    ("poisoning", "jv", "adiku ngombe racun tikus, cangkeme umpluk"),
    ("poisoning", "en", "my brother drank pesticide and is foaming at the mouth"),
    ("poisoning", "sms", "tmn sy minum obat sestrip, skrg gk bs dibangunin"),
    ("choking", "id", "bayi saya tersedak kancing, wajahnya membiru"),
    ("choking", "jv", "anakku keselek pentol, raine biru"),
    ("choking", "en", "my baby is choking on a button and turning blue"),
    ("choking", "sms", "ank sy keselek permen gk bs npas"),
    ("allergy", "id", "disengat tawon, mukanya bengkak dan sesak"),
    ("allergy", "jv", "dientup tawon, raine abuh, ambegane ngik ngik"),
    ("allergy", "en", "after eating peanuts her lips and throat are swelling"),
    # scalds: the body part told before the blisters, and "kesiram" for "tersiram"
    (
        "burns_electric",
        "id",
        "balita ketumpahan kuah sayur mendidih, punggung sampai perut melepuh",
    ),
    ("burns_electric", "jv", "anakku kesiram banyu panas saka termos, nangis terus"),
    ("burns_electric", "en", "my toddler pulled a kettle down and got scalded on his chest"),
    ("burns_electric", "id", "tukang tersengat listrik di tiang, tidak bergerak"),
    ("burns_electric", "jv", "wong kesetrum ning cagak listrik isih nempel kabel"),
    ("burns_electric", "en", "a worker was electrocuted on the roof"),
    ("drowning", "id", "anak tenggelam di sungai belum muncul"),
    ("drowning", "jv", "bocah kelelep ning kali, durung munggah"),
    ("drowning", "kr", "lare kula keli wonten ing kali, dereng ketemu"),
    ("drowning", "en", "my friend was pulled out by the waves at Sigandu beach"),
    ("drowning", "sms", "tlg org keseret arus di muara"),
    ("trapped", "id", "tembok roboh menimpa orang setelah gempa, belum bisa dikeluarkan"),
    ("trapped", "jv", "omahe ketimbun lemah, wonge isih ning njero"),
    ("trapped", "en", "a worker is trapped under the collapsed wall"),
    ("trapped", "sms", "org kejepit di mobil, blm bs dikeluarin"),
    ("fire_people", "id", "rumah terbakar, nenek masih di dalam kamar"),
    ("fire_people", "jv", "omah kobong, bapakku isih ning njero ra iso metu"),
    ("fire_people", "en", "the house is on fire and my children are still inside"),
    ("fire_people", "sms", "kbkaran rmh, ank msh di dlm"),
    ("fire_people", "id", "api dari pembakaran jerami sudah nyampe pagar rumah warga"),
    ("fire_people", "jv", "geni saka gudang wis nyambar nang omah sebelah"),
    (
        "burns_electric",
        "id",
        "kabel PLN jatuh di atap seng, sekarang atapnya nyetrum, anak masih di dalam",
    ),
    ("crash", "id", "mobil terbalik masuk parit, masih ada orang di dalamnya"),
    # a fire on land come down to the houses
    (
        "fire_people",
        "id",
        "api dari kebun tebu sudah sampai rumah paling ujung, warga pada ngungsi",
    ),
    ("violence", "id", "suami mencekik anaknya, sekarang masih di rumah"),
    ("violence", "jv", "wong edan nggawa arit ngamuk ning pasar, wis mbacok wong"),
    ("violence", "en", "a man stabbed someone at the market and is still walking around"),
    ("violence", "sms", "ada yg dibacok, pelaku msh di lokasi"),
    ("violence", "id", "pencuri dikeroyok warga sampai berdarah-darah"),
    ("intruder", "id", "ada maling masuk rumah, kami sembunyi di kamar"),
    ("intruder", "en", "there is a burglar in the kitchen right now, we are hiding upstairs"),
    ("jump", "id", "ada orang naik tower SUTET mau lompat"),
    ("jump", "jv", "ana wong ning pinggir kreteg arep mlumpat"),
    ("jump", "en", "a woman is standing on the bridge railing threatening to jump"),
    ("crash", "id", "motor masuk kolong truk, pengendaranya tidak bergerak"),
    ("crash", "jv", "ketabrak truk, wonge ora obah ning tengah dalan"),
    ("crash", "en", "a truck hit two motorbikes, one man is not moving"),
    ("crash", "sms", "laka R2 vs truk, 3 korban tergeletak gk gerak"),
    ("crash", "id", "mobil pick up terguling, penumpang di bak terpental"),
    ("disaster_people", "id", "banjir bandang, air sudah sedada, nenek masih di bawah"),
    ("disaster_people", "jv", "banyune wis sak gulu, wong-wong ning gendeng"),
    ("disaster_people", "en", "flash flood, people are on the roofs waiting for a boat"),
    ("disaster_people", "id", "longsor menimbun rumah, ibu dan anak belum keluar"),
]


@pytest.mark.parametrize(("complaint", "form", "text"), THREATS)
def test_each_chief_complaint_in_each_form_is_p1_with_units(
    classifier: Classifier, complaint: str, form: str, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.CALL112)
    assert decision.priority is Priority.P1, decision.explanation
    assert decision.category in EMERGENCY_CATEGORIES and decision.dispatches_units
    reading = classifier.read(text)
    found = {f.complaint for f in classifier.threats.assess(reading).findings}
    assert complaint in found, (found, reading.tokens, decision.explanation)
    assert decision.questions, "a P1 carries the call-taker's key questions"


# Words of a threat in another sense, or a threat that is over, feared, denied or a joke.
NOT_THREATS = [
    "mau tanya jadwal kereta api ke Semarang",
    "toko sebelah banjir diskon akhir tahun",
    "ibu saya mau kontrol tekanan darah rutin di puskesmas",
    "pak bupati kebakaran jenggot dikritik soal jalan",
    "tenggelam dalam kesibukan, pak camat tetap turun ke desa",
    "kemarin rumah kami kebakaran, sekarang butuh bantuan terpal",
    "terima kasih tim SAR yang sudah menemukan anak kami yang tenggelam minggu lalu",
    "pohon di depan sekolah miring, takut tertimpa kalau hujan",
    "tanah longsor menutup jalan, tidak ada korban jiwa",
    "tadi kebakaran dapur, api sudah padam, semua selamat",
    "anak saya kejang demam minggu lalu, sudah sembuh, mau tanya jadwal imunisasi",
    "HP ku semaput ra iso diurupke wkwk",
    "pak kancaku kelelep... kelelep tresna wkwkwk",
    "ada kebakaran di hatiku hahaha cuma bercanda",
    "akta kematian bapak saya belum keluar",
    "lampu jalan mati, gelap, rawan kecelakaan",
    "jalan berlubang, sering ada motor jatuh, mohon diperbaiki",
    "sapi kula kecemplung sumur mboten saged minggah",
    "kabel listrik nyangkut di pohon depan rumah",
    "harga cabai di pasar meledak, kapan operasi pasar?",
    "my phone is dead and the battery won't charge",
    "kemarin sakit di dada, sekarang sudah reda",
]


@pytest.mark.parametrize("text", NOT_THREATS)
def test_other_senses_past_feared_denied_and_jokes_are_not_p1(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.WHATSAPP)
    assert decision.priority is not Priority.P1, decision.explanation
    assert not decision.needs_confirmation


def test_uncertain_evidence_is_p1_with_the_questions_to_confirm_or_lower_it(
    classifier: Classifier,
) -> None:
    unsure = classifier.classify(text="bapak saya sesak napas", channel=Channel.PSC119)
    assert unsure.priority is Priority.P1 and unsure.threat == "possible"
    assert unsure.needs_confirmation and not unsure.needs_review
    assert any("bicara" in q for q in unsure.questions)  # can they speak a whole sentence?
    sure = classifier.classify(
        text="bapak saya sesak napas, bibirnya biru, tidak bisa bicara", channel=Channel.PSC119
    )
    assert sure.priority is Priority.P1 and sure.threat == "certain"
    assert not sure.needs_confirmation and sure.questions


def test_a_certain_threat_from_a_flagged_number_is_p1_a_possible_one_is_p3_to_confirm(
    classifier: Classifier,
) -> None:
    flagged = CallerSignals(
        prior_reports=9, prior_pranks=5, repeat_caller=True, prank_flagged=True, ghost=False
    )
    certain = classifier.classify(
        text="anak saya tenggelam di kali", channel=Channel.CALL112, signals=flagged
    )
    assert certain.priority is Priority.P1
    possible = classifier.classify(
        text="ada kebakaran di pasar", channel=Channel.CALL112, signals=flagged
    )
    assert possible.priority is Priority.P3 and possible.needs_confirmation
    assert possible.questions and "flagged" in possible.explanation


def test_a_laugh_while_someone_is_trapped_is_no_prank(classifier: Classifier) -> None:
    decision = classifier.classify(
        text="haha tolong ada kebakaran, orang terjebak di lantai dua", channel=Channel.CALL112
    )
    assert decision.category is Category.FIRE and decision.priority is Priority.P1


def test_speech_to_text_run_together_and_split_words_are_read(classifier: Classifier) -> None:
    reading = classifier.read("halo iya pak bapak saya tidaksadar kece lakaan motor")
    assert {"tidak", "sadar", "kecelakaan"} <= set(reading.tokens)
    assert "cekik" not in classifier.read("anak-anak cekikikan di telepon").tokens
    # "tiba" alone is Javanese for a fall; "tiba-tiba" is suddenly.
    assert "jatuh" in classifier.read("mbahku tiba ning kamar mandi").tokens
    assert "jatuh" not in classifier.read("bapak tiba-tiba pingsan").tokens


def test_a_place_name_is_never_read_as_a_keyword(classifier: Classifier) -> None:
    # Kebaturan (a desa of Bandar) is one slip from "kebakaran".
    assert "kebakaran" not in classifier.read("jadwal posyandu di ds Kebaturan").tokens


def test_everyday_words_are_never_read_as_a_keyword(classifier: Classifier) -> None:
    # "posisi" (a position at sea) is one slip from "polisi"; "ditambal" from "ditambat";
    # "dibayar" (paid) from "dibakar" (burned), "seorang" from "serang", "bandeng"
    # (milkfish) from "bandang", "ditolong" from "ditodong", Javanese "senajan" (though)
    # from "senapan".
    tokens = classifier.read(
        "kapal bocor, posisi 5 mil, jalan mohon ditambal. gaji belum dibayar, seorang "
        "penjual bandeng ditolong warga senajan hujan"
    ).tokens
    for bent in ("polisi", "ditambat", "dibakar", "serang", "bandang", "ditodong", "senapan"):
        assert bent not in tokens


def test_javanese_words_with_an_ending_are_still_read(classifier: Classifier) -> None:
    # Words the training reports use often are never corrected, but they are still read:
    # "ambegane" (his breathing) is "napas", "omahe" (his house) is "rumah".
    assert classifier.read("ambegane omahe").tokens == ("napas", "rumah")


def test_a_word_a_pattern_takes_by_its_beginning_is_not_corrected(
    classifier: Classifier,
) -> None:
    # "tersengal*" (gasping) was corrected to "tersengat" (stung), and the breathing
    # problem was missed.
    decision = classifier.classify(text="ibu tersengal sengal di kamar", channel=Channel.PSC119)
    assert "tersengal" in classifier.read("ibu tersengal sengal").tokens
    assert decision.priority is Priority.P1
    assert "breathing" in decision.complaints, decision.explanation


def test_the_explanation_names_the_words_that_decided(classifier: Classifier) -> None:
    decision = classifier.classify(
        text="mbak anak saya dipatok ular di sawah, kakinya bengkak hitam", channel=Channel.PSC119
    )
    assert decision.priority is Priority.P1
    assert "venomous bite" in decision.explanation and "model:" in decision.explanation


# Reports in the styles a call-taker's screen also gets (forwarded messages, transcripts,
# officials' reports, krama, English), written after the shared corpus, each once missed.
NEW_STYLE_THREATS = [
    # the owner's animal did it; the person is the one at risk
    "anjing saya gigit anak saya kejang",
    "sapi saya nyeruduk bapak, bapak tidak bernapas",
    # words that once discounted these: a rehearsal, "nothing wrong", "already awake"
    "saat gladi paskibra ambruk tidak napas di alun alun",
    "dikira tidak ada apa apa ternyata dia tidak bernapas",
    "ini bukan hoaks, beneran ada anak tenggelam di kali Sambong",
    "petugas sudah sadar pak penelpon belum masih kejang kejang terus",
    "anak saya kejang, sudah sadar sebentar lalu kejang lagi tidak berhenti",
    "during exercise at the gym he collapsed and is not breathing",
    # a player or an elder is a person, and a film may be on when it happens
    "pemain bola pingsan di lapangan Kandeman",
    "lagi nonton film tiba2 bapak pingsan",
    # krama: hard to wake (angel dipun gugah), not passing water, confused
    "simbah kakung dereng dhahar kalih dinten, bingung, angel dipun gugah, Desa Kembanglangit",
    # an infant that will not feed, hot and limp
    "bayi kami umur 2 minggu tidak mau netek sejak semalam, panas, lemas terkulai, Tulis",
    # severe pre-eclampsia told by its signs
    "istri hamil 35 minggu, kepala sakit sekali sejak pagi, pandangan kabur, kaki bengkak",
    # self-harm now, and pills by the handful
    "kakak saya nyayat tangannya pakai silet di kamar mandi, pintunya dikunci, Batang",
    "anakku mangan obat mbahe sak plastik bar diseneni, saiki ngantuk banget, Pecalungan",
    # a fisherman out alone in a storm
    "nelayan Klidang belum pulang sejak subuh, sendirian, badai dari siang, HP tidak aktif",
    # a rehearsal's words are no drill when someone really collapses in it
    "ini bukan drill! waktu gladi bersih upacara, anggota paskibra ambruk, kejang, lalu "
    "tidak napas, alun-alun Batang",
    # thanks are no sign that anything is handled, and "kali ini" (this time) is now
    "Terima kasih atas bantuan bulan lalu 🙏 kali ini tolong lagi, ayah saya sesak napas "
    "berat tidak bisa berbaring, desa Sambong",
    "matur nuwun sampun nampi telpon kula, simbah kula semaput boten saged dipun gugah",
    # a prank denied is no prank
    "No, this is not a prank: a man is hanging in the shed behind the mosque in Subah",
    # what comes after a "but" is not undone by what came before it
    "cuma luka kecil tapi darahnya tidak mau berhenti, muncrat terus, di bengkel Tersono",
    "penumpang mobil selamat semua, tapi pejalan kaki yang ditabrak tidak gerak, Gringsing",
    # past, then today
    "kemarin jatuh dari motor, pagi ini tidak bisa dibangunkan, ngorok, desa Kalisalak",
    "he had a seizure last year; it started again and now he is gurgling, Warungasem",
    # the thing is in the clause before ("motor"); the person is what does not move
    "kabel PLN putus nyamber wong numpak motor, wonge gosong ora obah, dalan Bawang",
    # a key held too long ("lemmes", "atass") and SMS's "jatoh": a child limp, eyes up
    "adikku lemmes abis jatoh dr genteng, mata ke atass, gk nangis, ds sidorejo",
    # a transcript: the child out of the pond, limp and blue
    "petugas anaknya gimana bu penelpon udah diangkat dari kolam tapi lemes biru semua",
    # krama "dhiri" is "diri"
    "wonten tiyang badhe bunuh dhiri saking jembatan, sampun wonten pinggir pager",
    # a village head forwarding what a neighbour said: heard, so a P1 to confirm
    "Diteruskan: Info dari warga RT 3, rumah pak Darmo roboh kena longsor tadi subuh, "
    "katanya istri sama anaknya belum bisa dikeluarkan. Mohon bantuan. Info lain: "
    "pengajian ditunda.",
    "kabarnya ada anak kecebur sumur di dusun sebelah, belum ditolong",
    # a snake a few words from the bite
    "ada ular kobra masuk rumah, anak saya digigit kakinya bengkak",
    "ada yang nekat mau bakar diri di depan kantor bupati, sudah siram bensin",
    "FWD dari grup RT: ada ibu2 hamil di dusun krajan pecah ketuban, ambulans desa rusak",
    # one found does not end the search for the others
    "jembatan gantung putus pas ada 3 warga nyebrang, 1 sudah ditemukan, 2 masih dicari di sungai",
    "tanggul jebol air masuk kampung cepat sekali warga panik banyak yang masih di rumah",
    "tolong kirim pemadam, kebakaran lahan tebu dekat pemukiman, angin kencang",
    "tolong ada pohon tumbang menimpa rumah, penghuni sedang di dalam",
    "bau gas elpiji di dapur, ibu saya pusing dan muntah",
    # 'bernafas' is 'bernapas'; a choice of phrases needs its parentheses in a pattern
    "bapak-bapak di sawah kena petir, sekarang tidak bernafas",
    "nenek saya gula darahnya tinggi sekali, sekarang susah dibangunkan",
    "pemuda mabuk oplosan, 3 orang muntah-muntah dan matanya tidak bisa melihat",
    "anak saya dianiaya tetangga, sekarang pingsan",
]
# The breathing danger signs a call-taker asks about, given only in the caller's answers
# (blue lips; talking a word at a time, which "still talks" does not undo).
NEW_STYLE_THREATS += [
    "ibu saya asmanya kumat ... warna kukunya gimana ... agak kebiruan pak",
    "kakek sesak dari sore ... masih bisa ngomong pak ... bisa tapi cuma sepatah sepatah",
    "my husband is wheezing, he can still talk but only a few words",
    "nenek sesak napas, ngomongnya putus putus",
]
NEW_STYLE_THREATS += [
    # a person named after the thing is at risk; "barely breathing" is no "almost"
    "tiang telepon roboh ketiban pohon, tukang parkir tertimpa",
    "napas simbah hampir tidak ada, dipanggil diam saja",
    # one who will not come down from a height; a car gone into the water
    "pemuda di atas tower sutet sejak tadi, dibujuk warga tidak mau turun",
    "pikap terjun dari jembatan ke sungai, posisi terbalik",
    # a car through a fence into a pond with its driver: no thing's sinking
    "mobil box tabrak pagar terus nyemplung kolam, sopir masih di kabin",
    # spirits drunk mixed; a door locked with a rope taken in; a man under a struck tree;
    # what happens while watching is lived
    "kancaku nyampur spiritus karo sprite, saiki mutah terus pandangane peteng",
    "anak saya mengunci diri di kamar sejak sore, tadi bawa tali jemuran, diketuk tidak menjawab",
    "pohon kelapa kesamber petir, bapak yang berteduh di bawahnya pingsan",
    "lagi nonton tv tiba tiba kakek kejang kejang",
    "ini video orang tenggelam di sungai Sambong tolong",
    "anak saya kejang, gejalanya seperti kesurupan",
    # a knife waved at people, in English; a rider carried off by a flooded ford; a man
    # lying on a fallen cable
    "a guy is waving a knife at people near the bus terminal",
    "motor kebawa banjir pas nyebrang limpas, orangnya terakhir keliatan nyangkut di bambu",
    "tukang parkir tergeletak di atas kabel yang putus, masih ada percikan",
    # a knife pointed at someone, said as people say it
    "wong mendem nodong lading nang warung, njaluk duit",
]
NEW_STYLE_THREATS += [
    # a boat taking water with its crew aboard; a knife in a threat, said as people say it
    "perahu pak Darto bocor di tengah laut, air terus masuk, 3 orang di atasnya",
    "the fishing boat is taking water, four crew on board, engine dead",
    "bapake mabuk ngancem nganggo arit, anak-anake ndelik nang kamar",
    # an impostor's threat that is also a weapon at the door stays a threat
    "orang ngaku polisi datang ke rumah bawa pisau ngancem ibu",
    # a denial of injuries does not hide a finding
    "tidak ada korban jiwa, tapi 2 orang masih terjepit di mobil",
    # "tolong ... cepat": what the report is about is now, whatever happened long ago
    "mbah di rumah sendiri sudah lama sakit, tadi saya lihat tergeletak tidak gerak, "
    "tolong pak cepat",
    # a formal report "sesuai prosedur" asks nothing
    "Dengan hormat, sesuai prosedur kami laporkan ada korban tidak sadar di pos kamling",
    # last night is hours ago, not over: what began then may be going on now
    "anak saya kejang tadi malam, lemas tidak mau bangun",
    "kemarin bapak jatuh dari motor, kepalanya berdarah terus, muntah-muntah",
]
NEW_STYLE_THREATS += [
    # asking whether this is the right number, or having sent a video, is no rumour
    "apa benar ini nomor damkar? gudang sebelah terbakar, ada orang terjebak, saya kirim video",
]
NEW_STYLE_NOT_THREATS = [
    # a rumour asked about: where it was heard, and whether it is true
    "ada kabar beredar di grup wa kalau besok ada gempa besar dan tsunami, bener gak min?",
    "katanya ada orang tenggelam di waduk, videonya viral, apa benar ada kejadian itu?",
    "is it true that a kid was kidnapped near the square? everyone on facebook is sharing it",
    # a "no" that closes a question before the next one ("... gak? napasnya ...")
    "anak saya tadi tersedak tapi sudah keluar, perlu ke dokter gak? napasnya sekarang biasa",
    # a call-taker's note of a silent line; a heart on fire
    "penelepon tidak ada respon setelah disapa tiga kali, terdengar suara tv",
    "atiku kobong ndelok mantan nikah 😭",
    "mohon maaf tadi anak saya main hp telepon 112 bilang ada kebakaran, gada apa2, desa Tulis",
    # krama "sedasa" (ten) is no "sedada" (chest-high), "shouting" no "shooting"
    "lampu dalan ngajeng masjid sampun sedasa dinten pejah, nyuwun dipun dandosi",
    "a drunk man keeps shouting outside our homestay, not violent, please send someone",
    "air masuk rumah setinggi mata kaki, semua warga aman, mohon pompa",
    "tangan adik kena knalpot, melepuh sak telapak, sudah dikompres, ke puskesmas mana?",
    "cut my finger slicing mangoes, the bleeding has stopped, is the clinic open?",
    "besok pabrik kami ada fire drill jam 9 pakai asap buatan, mohon jangan panik",
    "semalam nonton sinetron, adegan tabrakan terus pemerannya koma, sedih banget",
    "mau tanya nomor pemadam kebakaran batang berapa ya buat disimpan",
    "kebakaran kecil di warung sebelah udh dipadamkan warga, tinggal bau gosong",
    "min katanya ada pasar malam banjir diskon di alun2 minggu ini?",
    "dok, anak saya tertelan mainan kecil tapi sekarang biasa aja main lagi, bahaya gak?",
    "NIK anak saya belum muncul di data kependudukan, mohon dibantu",
    "anak-anak main layangan di dekat kabel SUTET, tolong dilarang sebelum ada korban",
    "is it true there will be a tsunami tonight?",
    "Kejadian: Kebakaran rumah tinggal. Lokasi: Ds. Kebumen Tulis. Korban jiwa: nihil. "
    "Kerugian: Rp 50 juta. Status: padam.",
    # "almost" says it did not happen; a thing struck or flooded is no person at risk;
    # Javanese "ora ono sing" denies as "tidak ada yang" does
    "antri obat dari pagi sampai siang, lansia hampir pingsan, mohon loket ditambah",
    "truk ngebut di tanjakan, anak sekolah nyaris tertabrak, mohon dipasang polisi tidur",
    "gardu listrik ketiban pohon kelapa, listrik sak kampung mati",
    "kali meluap, jembatan kelelep, warga aman ning omah",
    "sapi tetangga kecemplung sumur, ora iso munggah",
    "wit randu ambruk nutup dalan, ora ono sing ketiban",
    # a thing struck by lightning; a video of elsewhere; a question about symptoms; what
    # "katanya" tells that is over; "sekarang" with what is now well; "mgg lalu"
    "trafo di gang kami kesambar petir, listrik padam sejak sore",
    "merinding lihat videonya banjir bandang di Kudus, semoga warga sana diberi kekuatan",
    "bu bidan, kejang demam pada balita itu gejalanya seperti apa ya? buat jaga-jaga",
    "katanya tetangga keracunan jamur kemarin, tapi sudah pulang dari puskesmas dan sehat",
    "adik kejang terus nunggu ambulans lama, sekarang alhamdulillah sudah sembuh, mohon "
    "layanan diperbaiki",
    "mgg lalu sy kena jambret di jalan, mau urus STNK yang hilang",
    # a warning asked about; a neighbour who has had a stroke, in a noise complaint
    "is there a tsunami warning after that quake? we are staying near the beach",
    "tetangga penderita stroke, hajatan sebelah dangdutan sampai pagi, mohon ditertibkan",
    # what the river took is a motorbike and a phone
    "anak kemarin kintir tapi sudah ketemu selamat, cuma motor dan hp ikut hilang kebawa arus",
    # a cat on a roof, a kite on a cable, drinking in the dark, a finger caught in a door
    "kucing di atap tidak mau turun dari tadi",
    "layangan jatuh kena kabel listrik depan rumah",
    "warga resah pesta miras tiap malam di tempat gelap",
    "jari anak kepencet pintu, bengkak",
    # a boat moored and empty; a footbridge the river took, nobody on it
    "sampan kosong yang ditambat di muara bocor dan hanyut, tidak ada orangnya",
    "jembatan gantung dusun kami putus hanyut kebawa arus, gk ada korban",
    # a scammer's threat by message; asking how to report violence
    "ada sms ngaku petugas bank ngancem kalau gak transfer rekening diblokir, penipuan ya?",
    "bagaimana prosedur pelaporan KDRT kalau korbannya saudara sendiri?",
    # a quarrel that died down, an alarm that was a cat, a fight already settled
    "ribut-ribut tetangga sebelah dari tadi, sekarang sudah agak reda, mohon ditegur besok",
    "nenek lapor ada maling, setelah dicek ternyata cuma kucing di genteng, pelapor sudah tenang",
    "dua murid berkelahi di kelas, sudah dilerai guru dan didamaikan, mau tanya prosedurnya",
    # obvious death hours ago: cold and stiff, a hearse and papers asked for
    "bapak meninggal di tempat tidur, napas berhenti jam 3 tadi, badan sudah dingin dan "
    "kaku, minta mobil jenazah",
    # a lightning strike on a tower; a heart attack last Tuesday, thanked for
    "menara pemancar di bukit desa kami kesamber petir tadi sore, sinyal hilang",
    "thank you to the ambulance crew for last Tuesday, my father had a heart attack and is "
    "now recovering",
    # a question asked outright
    "which office do I go to for a residence letter? what documents are needed?",
    # boats that collided, nobody hurt
    "dua perahu tabrakan di muara, satu miring, awaknya pindah ke perahu lain, tidak ada yang luka",
    # "ditambal" is no boat "ditambat": a pothole to patch before anyone is hurt
    "lubang di jalan desa tiap hari bikin pemotor jatuh, tolong ditambal sblm ada korban jiwa",
]


@pytest.mark.parametrize("text", NEW_STYLE_THREATS)
def test_threats_in_styles_the_corpus_lacks_are_p1_with_questions(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.CALL112)
    assert decision.priority is Priority.P1, decision.explanation
    assert decision.questions


@pytest.mark.parametrize("text", NEW_STYLE_NOT_THREATS)
def test_reports_in_those_styles_without_a_threat_are_not_p1(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.WEB)
    assert decision.priority is not Priority.P1, decision.explanation


def test_a_transcripts_answer_says_what_the_question_asked(classifier: Classifier) -> None:
    """The key fact only in the caller's answer to the call-taker's question."""
    asleep = classifier.classify(
        text="operator: ada yang bisa dibantu? penelepon: suami saya jatuh di kamar mandi "
        "operator: sadar bu? penelepon: nggak pak",
        channel=Channel.PSC119,
    )
    assert asleep.priority is Priority.P1 and asleep.threat == "certain", asleep.explanation
    breathing = classifier.classify(
        text="petugas: masih napas pak? pelapor: enggak kayaknya, anak saya tenggelam tadi",
        channel=Channel.CALL112,
    )
    assert breathing.priority is Priority.P1, breathing.explanation
    awake = classifier.classify(
        text="operator: sadar bu? penelepon: iya sadar, cuma kakinya lecet jatuh dari sepeda",
        channel=Channel.PSC119,
    )
    assert awake.priority is not Priority.P1, awake.explanation


def test_krama_and_ngoko_words_for_a_snake_bite_and_a_machete(classifier: Classifier) -> None:
    bite = classifier.classify(
        text="putra kula dipun cokot sawer, sukunipun abuh lan ireng", channel=Channel.PSC119
    )
    assert bite.priority is Priority.P1 and bite.threat == "certain", bite.explanation
    machete = classifier.classify(
        text="ono wong kenthir nggowo bendo ngoyak-ngoyak wong nang pasar",
        channel=Channel.CALL112,
    )
    assert machete.priority is Priority.P1 and machete.threat == "certain", machete.explanation


def test_a_threat_only_the_model_reads_is_not_lost_among_courtesies(
    classifier: Classifier,
) -> None:
    """Words around a report dilute it for the model; a sentence the model reads as a threat
    on its own keeps the report P1, to confirm, and the explanation quotes it."""
    threat = "kbakaran rmh di ds Cablikan kec Reban, tlg kirim damkar."
    around = (
        " Laporan dari warga RT 3. Mohon dibagikan ke warga lain. Begitu kabarnya, mohon maaf "
        "kalau kurang jelas. Terima kasih atas perhatiannya bapak ibu sekalian."
    )
    decision = classifier.classify(text=threat + around, channel=Channel.WHATSAPP)
    assert decision.priority is Priority.P1, decision.explanation
    assert decision.needs_confirmation and decision.questions
    assert "(the sentence 'kbakaran rmh" in decision.explanation
    # Read as one run of words, the same report is diluted below P1: the sentences matter.
    flat = classifier.classify(text=(threat + around).replace(".", ""), channel=Channel.WHATSAPP)
    assert flat.priority is not Priority.P1, flat.explanation


def test_all_safe_but_one_is_a_certain_threat(classifier: Classifier) -> None:
    """ "kecuali" (except) is a "but": what follows it is not handled with the rest."""
    decision = classifier.classify(
        text="warga semua aman kecuali satu anak yang hanyut terbawa arus", channel=Channel.WEB
    )
    assert decision.priority is Priority.P1
    assert decision.threat == "certain", decision.explanation


@pytest.mark.parametrize(
    "text",
    [
        "istri sy lahiran di rumah, kaki bayinya keluar duluan, bidan blm dtg",
        "bojoku babaran, sikile bayi metu disik",
        "my wife is in labour and the baby's feet are coming out first",
        "persalinan di rumah, keluar duluan tangan",
    ],
)
def test_a_birth_where_a_limb_comes_first_is_a_certain_threat(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.PSC119)
    assert decision.priority is Priority.P1 and decision.threat == "certain", decision.explanation
    assert "pregnancy" in decision.complaints


def test_a_baby_in_the_breech_position_before_labour_or_a_babys_feet_are_no_birth(
    classifier: Classifier,
) -> None:
    for text in (
        "kata dokter bayi saya posisinya sungsang, usia kandungan 7 bulan, apa bisa normal?",
        "saya keluar dulu beli obat buat kaki bayi yang ruam",
        "kaki bayi saya keluar ruam merah2 sejak kemarin",
    ):
        decision = classifier.classify(text=text, channel=Channel.WHATSAPP)
        assert "pregnancy" not in decision.complaints, decision.explanation


@pytest.mark.parametrize(
    "text",
    [
        "data bantuan di desa kami ngawur, banyak yang mampu malah dapat",
        "akta kelahiran anak saya hangus terbakar waktu rumah kebakaran bulan lalu, gimana ngurusnya",
        "KTP saya kobong bareng lemari, piye carane gawe maneh",
        "di RT kami banyak yang kena demam berdarah, minta fogging",
        "ada orang tidur di teras masjid sambil ngorok, kelihatannya sehat2 aja",
        # "baru datang" is "came only then", not "just now"
        "keluhan: kemarin bapak saya sesak napas, ambulans baru datang 2 jam kemudian. "
        "sekarang bapak sudah dirawat, mohon dievaluasi",
        # a word taken back
        "mau lapor kebakaran... eh bukan, mau tanya nomor damkar buat sarang tawon",
    ],
)
def test_careless_data_burned_papers_dengue_and_a_healthy_sleeper_are_not_p1(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.WHATSAPP)
    assert decision.priority is not Priority.P1, decision.explanation


def test_speech_that_makes_no_sense_and_colloquial_aja_are_still_read(
    classifier: Classifier,
) -> None:
    confused = classifier.classify(
        text="simbah omongane ngawur wiwit esuk, ora kenal anake", channel=Channel.PSC119
    )
    assert confused.priority is Priority.P1 and "unconscious" in confused.complaints
    silent = classifier.classify(text="bapak dipanggil diam aja, ga gerak", channel=Channel.PSC119)
    assert silent.priority is Priority.P1 and silent.threat == "certain", silent.explanation
    again = classifier.classify(
        text="kemarin simbah jatuh, barusan pingsan lagi", channel=Channel.PSC119
    )
    assert again.priority is Priority.P1 and again.threat == "certain", again.explanation


@pytest.mark.parametrize(
    "text",
    [
        # ngoko: called and no answer; pinned; buried; run over; drooling after spraying
        "simbah diceluk ora nyauri, matane melek tok",
        "pak Karyo ketindhih traktor nang sawah, isih sadar ngerang",
        "tukang sumur keurug ning njero sumur",
        "akeh wong keplindes truk nang pasar",
        "adikku bar nyemprot pestisida, saiki ngeces terus lan kringete gembrobyos",
        # krama and Indonesian chest pain, fingers gone purple, blood spurting in English
        "garwa kula sambat dhadhanipun kados dipun peres",
        "sopir pegang dada, mukanya abu abu, keringat bercucuran",
        "ibu ngos ngosan, jari jarinya ungu",
        "blood is spurting from his leg",
        # taken into a car, a flood up to the roof, workers down a tank
        "anak perempuan ditarik paksa masuk mobil orang tak dikenal barusan",
        "banyu tekan payon, tonggoku sakkeluarga munggah gendeng",
        "tiga pekerja turun ke bak limbah gak naik naik, satu tergeletak",
        # a wish to die with the means gathered; dengue's critical phase; vomiting blood
        "aku wis ora kuat, obat nyamuk wis tak siapke, pengen mati wae",
        "anak sy demam hari ke-4, td sore panasnya turun tp malah lemes, tangan kaki dingin",
        "bapak muntah ada darahnya banyak",
        "anak saya makan jamur dari hutan, sekarang muntah terus dan lemas",
        # a child unseen since playing in the sea; an old man with dementia walking into it
        "anak saya ilang di pantai pak, 5 tahun, tadi main air, udah 20 menit gak keliatan",
        "nenek pikun belum pulang dari sore, ada yang lihat dia jalan masuk ke laut",
        # a brawl that has started; a child beaten "for a long while now"
        "dua kubu mau tawuran bawa kayu, sudah mulai lempar batu",
        "anak kecil dipukuli bapaknya pakai sabuk, menjerit jerit sudah lama",
        # the words of those near twins, around a real threat
        "pak ada suara orang minta tolong tenggelam di sungai",
        "anak tenggelam di antara perahu nelayan di muara",
        "ternyata anak saya tidak bernapas waktu dibangunkan",
        "maaf saya salah lapor tadi, yang tenggelam di sungai sebelah utara",
        "saya cuma lapor saja pak, di sungai ada anak hanyut belum ketemu",
        "mohon untuk dicatat, longsor menimbun rumah, 3 warga tertimbun",
        "suami mengancam pakai pisau, saya mau diusir dari rumah",
        "anak masih main, tiba-tiba tidak bisa napas, bibir biru",
        "korban sudah bisa bangun, pelaku masih di sekitar bawa celurit",
        "rumah kebakaran, dokumen dan anak saya terbakar",
        "korban tenggelam, ralat, dua orang yang tenggelam",
        "korban tidak ada tanda tanda kehidupan, tidak bernapas",
        # a call-taker's note of a silent line is said of the operator, not seven words wide
        "bapak tidak menjawab, tidak bernapas, tolong operator cepat",
        "suami mengancam pakai pisau, rumah disita bank",
        "harga cabai naik, kebakaran di pasar, banyak orang terjebak",
    ],
)
def test_threats_in_words_the_detector_had_missed_or_beside_near_twins_are_p1(
    classifier: Classifier, text: str
) -> None:
    decision = classifier.classify(text=text, channel=Channel.CALL112)
    assert decision.priority is Priority.P1 and decision.complaints, decision.explanation


@pytest.mark.parametrize(
    "text",
    [
        "kukunya dicat ungu sama anak saya",
        "habis lari pagi ngos ngosan, normal kan?",
        "air masuk ke bak mandi tidak keluar keluar, saluran mampet",
        "bapak jalan masuk ke sawah pagi tadi",
        # sales, figures of speech, care already given, false alarms
        "diskon kebakaran semua baju di toko kami, buruan",
        "suaraku tenggelam kalah sama sound hajatan tetangga, tolong ditegur",
        "kemarin bapak jatuh dari tangga, sudah dibawa anaknya ke puskesmas",
        "ibu sesak tadi malam, sekarang sudah mendingan setelah minum obat",
        "tadi ada yang bilang mau bunuh diri, ternyata cuma status WA, orangnya aman",
        "ibu murung sejak ditinggal bapak, tidak ada ucapan ingin mati, minta dirujuk ke psikolog",
        "debt collector mengancam rumah kami akan disita kalau tidak bayar",
        "maling di dapur? ternyata kucing nyenggol panci, maaf salah lapor",
        "bapak sudah stroke 2 tahun, kondisi stabil, minta antar kontrol rutin",
    ],
)
def test_near_twins_find_no_threat(classifier: Classifier, text: str) -> None:
    decision = classifier.classify(text=text, channel=Channel.WHATSAPP)
    assert not decision.complaints, decision.explanation


def test_what_goes_on_after_it_was_handled_is_the_latest_news(classifier: Classifier) -> None:
    for text in (
        "korban sudah dievakuasi ke balai desa, kepalanya berdarah terus tidak berhenti",
        "pasien sudah dibawa ke puskesmas tapi di jalan kejang lagi tidak berhenti",
        # a finding told after the last word that it was handled is news of its own
        "ibu sudah mendingan kemarin, tadi pagi jatuh pingsan tidak bangun",
        "bapak sudah di igd, dokter tidak ada, bapak tidak sadar dan biru",
        "ibu sudah membaik minggu ini, barusan tidak bernapas",
    ):
        decision = classifier.classify(text=text, channel=Channel.CALL112)
        assert decision.priority is Priority.P1 and decision.complaints, decision.explanation
    over = classifier.classify(
        text="kejang terus nunggu ambulans, sekarang sudah sembuh", channel=Channel.PSC119
    )
    assert not over.complaints, over.explanation
