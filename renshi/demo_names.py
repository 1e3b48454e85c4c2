"""Name pools of the demo organisation, one per country of its branches.

Given names carry a sex only so that an English name or a nickname fits the person; the
model itself records no sex. Every name here is common in its country and none belongs
to a particular person.
"""

from __future__ import annotations

import dataclasses
import random
import unicodedata


@dataclasses.dataclass(frozen=True)
class Name:
    given: str
    family: str
    local: str | None
    preferred: str | None
    email_stem: str  # ASCII, before the domain


# (characters, pinyin)
CHINESE_FAMILY = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"),
    ("杨", "Yang"), ("黄", "Huang"), ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"),
    ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"), ("胡", "Hu"),
    ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("高", "Gao"), ("罗", "Luo"),
    ("郑", "Zheng"), ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"),
    ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"), ("曹", "Cao"), ("彭", "Peng"),
    ("曾", "Zeng"), ("肖", "Xiao"), ("田", "Tian"), ("董", "Dong"), ("袁", "Yuan"),
    ("潘", "Pan"), ("蒋", "Jiang"), ("蔡", "Cai"), ("余", "Yu"), ("叶", "Ye"),
)  # fmt: skip

# (characters, pinyin, "f" or "m")
CHINESE_GIVEN = (
    ("伟", "Wei", "m"), ("芳", "Fang", "f"), ("娜", "Na", "f"), ("敏", "Min", "f"),
    ("静", "Jing", "f"), ("强", "Qiang", "m"), ("磊", "Lei", "m"), ("军", "Jun", "m"),
    ("洋", "Yang", "m"), ("勇", "Yong", "m"), ("艳", "Yan", "f"), ("杰", "Jie", "m"),
    ("涛", "Tao", "m"), ("超", "Chao", "m"), ("颖", "Ying", "f"), ("慧", "Hui", "f"),
    ("琳", "Lin", "f"), ("鹏", "Peng", "m"), ("晓明", "Xiaoming", "m"),
    ("子涵", "Zihan", "f"), ("浩然", "Haoran", "m"), ("雨萱", "Yuxuan", "f"),
    ("思远", "Siyuan", "m"), ("俊杰", "Junjie", "m"), ("欣怡", "Xinyi", "f"),
    ("宇航", "Yuhang", "m"), ("建国", "Jianguo", "m"), ("丽娟", "Lijuan", "f"),
    ("志强", "Zhiqiang", "m"), ("海燕", "Haiyan", "f"), ("文博", "Wenbo", "m"),
    ("佳怡", "Jiayi", "f"), ("天宇", "Tianyu", "m"), ("晨曦", "Chenxi", "f"),
    ("一鸣", "Yiming", "m"), ("静怡", "Jingyi", "f"), ("明辉", "Minghui", "m"),
    ("婷婷", "Tingting", "f"), ("嘉欣", "Jiaxin", "f"), ("博文", "Bowen", "m"),
    ("诗涵", "Shihan", "f"), ("浩宇", "Haoyu", "m"), ("梦琪", "Mengqi", "f"),
    ("子轩", "Zixuan", "m"), ("晓燕", "Xiaoyan", "f"), ("国华", "Guohua", "m"),
    ("秀英", "Xiuying", "f"), ("志刚", "Zhigang", "m"), ("雪梅", "Xuemei", "f"),
    ("振宇", "Zhenyu", "m"),
)  # fmt: skip

# (kanji, romaji)
JAPANESE_FAMILY = (
    ("佐藤", "Sato"), ("鈴木", "Suzuki"), ("高橋", "Takahashi"), ("田中", "Tanaka"),
    ("伊藤", "Ito"), ("渡辺", "Watanabe"), ("山本", "Yamamoto"), ("中村", "Nakamura"),
    ("小林", "Kobayashi"), ("加藤", "Kato"), ("吉田", "Yoshida"), ("山田", "Yamada"),
    ("佐々木", "Sasaki"), ("山口", "Yamaguchi"), ("松本", "Matsumoto"), ("井上", "Inoue"),
    ("木村", "Kimura"), ("林", "Hayashi"), ("清水", "Shimizu"), ("山崎", "Yamazaki"),
    ("森", "Mori"), ("池田", "Ikeda"), ("橋本", "Hashimoto"), ("阿部", "Abe"),
    ("石川", "Ishikawa"), ("前田", "Maeda"), ("藤田", "Fujita"), ("小川", "Ogawa"),
    ("岡田", "Okada"), ("後藤", "Goto"),
)  # fmt: skip

# (kanji, romaji, "f" or "m")
JAPANESE_GIVEN = (
    ("翔太", "Shota", "m"), ("大輔", "Daisuke", "m"), ("健太", "Kenta", "m"),
    ("拓也", "Takuya", "m"), ("直樹", "Naoki", "m"), ("誠", "Makoto", "m"),
    ("蓮", "Ren", "m"), ("陽翔", "Haruto", "m"), ("悠真", "Yuma", "m"),
    ("和也", "Kazuya", "m"), ("達也", "Tatsuya", "m"), ("浩", "Hiroshi", "m"),
    ("学", "Manabu", "m"), ("剛", "Tsuyoshi", "m"), ("隆", "Takashi", "m"),
    ("裕子", "Yuko", "f"), ("恵", "Megumi", "f"), ("美咲", "Misaki", "f"),
    ("陽菜", "Hina", "f"), ("結衣", "Yui", "f"), ("葵", "Aoi", "f"),
    ("さくら", "Sakura", "f"), ("愛", "Ai", "f"), ("真由美", "Mayumi", "f"),
    ("由美子", "Yumiko", "f"), ("智子", "Tomoko", "f"), ("麻衣", "Mai", "f"),
    ("彩", "Aya", "f"), ("奈々", "Nana", "f"), ("千尋", "Chihiro", "f"),
)  # fmt: skip

GERMAN_FAMILY = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
    "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
    "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann", "Köhler",
    "Huber", "Kaiser", "Fuchs", "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn",
)  # fmt: skip

GERMAN_GIVEN = (
    ("Lukas", "m"), ("Leon", "m"), ("Finn", "m"), ("Jonas", "m"), ("Felix", "m"),
    ("Maximilian", "m"), ("Paul", "m"), ("Elias", "m"), ("Tobias", "m"), ("Stefan", "m"),
    ("Michael", "m"), ("Thomas", "m"), ("Andreas", "m"), ("Markus", "m"),
    ("Christian", "m"), ("Sebastian", "m"), ("Florian", "m"), ("Jürgen", "m"),
    ("Anna", "f"), ("Lena", "f"), ("Hannah", "f"), ("Laura", "f"), ("Julia", "f"),
    ("Sarah", "f"), ("Katharina", "f"), ("Sophie", "f"), ("Marie", "f"), ("Johanna", "f"),
    ("Sabine", "f"), ("Claudia", "f"), ("Petra", "f"), ("Nicole", "f"), ("Stefanie", "f"),
    ("Franziska", "f"), ("Miriam", "f"), ("Jana", "f"), ("Jörg", "m"), ("Uwe", "m"),
)  # fmt: skip

AMERICAN_FAMILY = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Patel",
    "Kim", "O'Brien", "Cohen",
)  # fmt: skip

AMERICAN_GIVEN = (
    ("James", "m"), ("John", "m"), ("Robert", "m"), ("Michael", "m"), ("David", "m"),
    ("William", "m"), ("Richard", "m"), ("Joseph", "m"), ("Christopher", "m"),
    ("Daniel", "m"), ("Matthew", "m"), ("Anthony", "m"), ("Andrew", "m"), ("Joshua", "m"),
    ("Kevin", "m"), ("Brian", "m"), ("Ryan", "m"), ("Carlos", "m"), ("Marcus", "m"),
    ("Mary", "f"), ("Patricia", "f"), ("Jennifer", "f"), ("Linda", "f"),
    ("Elizabeth", "f"), ("Susan", "f"), ("Jessica", "f"), ("Sarah", "f"), ("Karen", "f"),
    ("Emily", "f"), ("Ashley", "f"), ("Michelle", "f"), ("Amanda", "f"), ("Rebecca", "f"),
    ("Megan", "f"), ("Rachel", "f"), ("Maria", "f"), ("Priya", "f"), ("Aisha", "f"),
)  # fmt: skip

NICKNAMES = {
    "Robert": "Bob", "Michael": "Mike", "David": "Dave", "William": "Will",
    "Richard": "Rick", "Joseph": "Joe", "Christopher": "Chris", "Daniel": "Dan",
    "Matthew": "Matt", "Anthony": "Tony", "Andrew": "Andy", "Joshua": "Josh",
    "Elizabeth": "Liz", "Jennifer": "Jen", "Patricia": "Patty", "Rebecca": "Becky",
    "Maximilian": "Max", "Stefanie": "Steffi", "Franziska": "Franzi", "Katharina": "Kathi",
    "Sebastian": "Basti", "Johanna": "Jo",
}  # fmt: skip

# English names that people in China often go by at work, by sex.
ENGLISH_NAMES = {
    "f": ("Grace", "Lily", "Vivian", "Cindy", "Helen", "Amy", "Joyce", "Iris", "Fiona"),
    "m": ("Kevin", "Eric", "Jack", "Leo", "Frank", "Tony", "Steven", "Allen", "Peter"),
}


def ascii_stem(*parts: str) -> str:
    """`given.family` in lower-case ASCII: Müller -> mueller, O'Brien -> obrien."""
    folded = []
    for part in parts:
        text = part.lower()
        for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
            text = text.replace(umlaut, spelled)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        folded.append("".join(ch for ch in text if ch.isalnum()))
    return ".".join(folded)


def pick_name(rng: random.Random, style: str) -> Name:
    """A name typical of `style` (cn, jp, de or us), drawn from `rng`."""
    if style == "cn":
        family_local, family = rng.choice(CHINESE_FAMILY)
        given_local, given, sex = rng.choice(CHINESE_GIVEN)
        preferred = rng.choice(ENGLISH_NAMES[sex]) if rng.random() < 0.2 else None
        return Name(given, family, family_local + given_local, preferred, ascii_stem(given, family))
    if style == "jp":
        family_local, family = rng.choice(JAPANESE_FAMILY)
        given_local, given, _sex = rng.choice(JAPANESE_GIVEN)
        return Name(given, family, f"{family_local} {given_local}", None, ascii_stem(given, family))
    if style == "de":
        given, _sex = rng.choice(GERMAN_GIVEN)
        family = rng.choice(GERMAN_FAMILY)
        nickname = NICKNAMES.get(given) if rng.random() < 0.15 else None
        return Name(given, family, None, nickname, ascii_stem(given, family))
    if style == "us":
        given, _sex = rng.choice(AMERICAN_GIVEN)
        family = rng.choice(AMERICAN_FAMILY)
        nickname = NICKNAMES.get(given) if rng.random() < 0.35 else None
        return Name(given, family, None, nickname, ascii_stem(given, family))
    raise ValueError(f"Unknown name style {style!r}.")
