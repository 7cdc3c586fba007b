"""China customs code tables used by the CEB (cross-border e-commerce) parser.

Pure data plus three lookups; no database. Every decision that maps a customs code onto the hub's
event vocabulary (shipments/statuses.py) is written next to the code it concerns, so an operator
reading a rejected record or a surprising status can find the reason here.

Sources: the GACC "海关国别(地区)代码表" and "币制代码表" (the numeric tables the CEB messages of
the 2018 No. 113 and 2022-05 specifications still use), and the CEB message specification's own
field definitions (returnStatus, logisticsStatus). The tables are reproduced from the published
lists; a code that is not in them is refused, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- countries -------------------------------------------------------------------------------
# 海关国别(地区)代码 -> ISO 3166-1 alpha-2. The first digit is the continent: 1 Asia, 2 Africa,
# 3 Europe, 4 Latin America, 5 North America, 6 Oceania, 7 special.
COUNTRY_CODES: dict[str, str] = {
    # Asia
    "101": "AF",  # 阿富汗
    "102": "BH",  # 巴林
    "103": "BD",  # 孟加拉国
    "104": "BT",  # 不丹
    "105": "BN",  # 文莱
    "106": "MM",  # 缅甸
    "107": "KH",  # 柬埔寨
    "108": "CY",  # 塞浦路斯
    "109": "KP",  # 朝鲜
    "110": "HK",  # 中国香港
    "111": "IN",  # 印度
    "112": "ID",  # 印度尼西亚
    "113": "IR",  # 伊朗
    "114": "IQ",  # 伊拉克
    "115": "IL",  # 以色列
    "116": "JP",  # 日本
    "117": "JO",  # 约旦
    "118": "KW",  # 科威特
    "119": "LA",  # 老挝
    "120": "LB",  # 黎巴嫩
    "121": "MO",  # 中国澳门
    "122": "MY",  # 马来西亚
    "123": "MV",  # 马尔代夫
    "124": "MN",  # 蒙古
    "125": "NP",  # 尼泊尔
    "126": "OM",  # 阿曼
    "127": "PK",  # 巴基斯坦
    "128": "PS",  # 巴勒斯坦
    "129": "PH",  # 菲律宾
    "130": "QA",  # 卡塔尔
    "131": "SA",  # 沙特阿拉伯
    "132": "SG",  # 新加坡
    "133": "KR",  # 韩国
    "134": "LK",  # 斯里兰卡
    "135": "SY",  # 叙利亚
    "136": "TH",  # 泰国
    "137": "TR",  # 土耳其
    "138": "AE",  # 阿拉伯联合酋长国
    "139": "YE",  # 也门
    "141": "VN",  # 越南
    "142": "CN",  # 中国
    "143": "TW",  # 台澎金马关税区
    "144": "TL",  # 东帝汶
    "145": "KZ",  # 哈萨克斯坦
    "146": "KG",  # 吉尔吉斯斯坦
    "147": "TJ",  # 塔吉克斯坦
    "148": "TM",  # 土库曼斯坦
    "149": "UZ",  # 乌兹别克斯坦
    # Africa
    "201": "DZ",  # 阿尔及利亚
    "202": "AO",  # 安哥拉
    "203": "BJ",  # 贝宁
    "204": "BW",  # 博茨瓦纳
    "205": "BI",  # 布隆迪
    "206": "CM",  # 喀麦隆
    "208": "CV",  # 佛得角
    "209": "CF",  # 中非
    "211": "TD",  # 乍得
    "212": "KM",  # 科摩罗
    "213": "CG",  # 刚果(布)
    "214": "DJ",  # 吉布提
    "215": "EG",  # 埃及
    "216": "GQ",  # 赤道几内亚
    "217": "ET",  # 埃塞俄比亚
    "218": "GA",  # 加蓬
    "219": "GM",  # 冈比亚
    "220": "GH",  # 加纳
    "221": "GN",  # 几内亚
    "222": "GW",  # 几内亚(比绍)
    "223": "CI",  # 科特迪瓦
    "224": "KE",  # 肯尼亚
    "225": "LR",  # 利比里亚
    "226": "LY",  # 利比亚
    "227": "MG",  # 马达加斯加
    "228": "MW",  # 马拉维
    "229": "ML",  # 马里
    "230": "MR",  # 毛里塔尼亚
    "231": "MU",  # 毛里求斯
    "232": "MA",  # 摩洛哥
    "233": "MZ",  # 莫桑比克
    "234": "NA",  # 纳米比亚
    "235": "NE",  # 尼日尔
    "236": "NG",  # 尼日利亚
    "237": "RE",  # 留尼汪
    "238": "RW",  # 卢旺达
    "239": "ST",  # 圣多美和普林西比
    "240": "SN",  # 塞内加尔
    "241": "SC",  # 塞舌尔
    "242": "SL",  # 塞拉利昂
    "243": "SO",  # 索马里
    "244": "ZA",  # 南非
    "245": "EH",  # 西撒哈拉
    "246": "SD",  # 苏丹
    "247": "TZ",  # 坦桑尼亚
    "248": "TG",  # 多哥
    "249": "TN",  # 突尼斯
    "250": "UG",  # 乌干达
    "251": "BF",  # 布基纳法索
    "252": "CD",  # 刚果(金)
    "253": "ZM",  # 赞比亚
    "254": "ZW",  # 津巴布韦
    "255": "LS",  # 莱索托
    "257": "SZ",  # 斯威士兰 (Eswatini)
    "258": "ER",  # 厄立特里亚
    "259": "YT",  # 马约特
    "260": "SS",  # 南苏丹
    # Europe
    "301": "BE",  # 比利时
    "302": "DK",  # 丹麦
    "303": "GB",  # 英国
    "304": "DE",  # 德国
    "305": "FR",  # 法国
    "306": "IE",  # 爱尔兰
    "307": "IT",  # 意大利
    "308": "LU",  # 卢森堡
    "309": "NL",  # 荷兰
    "310": "GR",  # 希腊
    "311": "PT",  # 葡萄牙
    "312": "ES",  # 西班牙
    "313": "AL",  # 阿尔巴尼亚
    "314": "AD",  # 安道尔
    "315": "AT",  # 奥地利
    "316": "BG",  # 保加利亚
    "318": "FI",  # 芬兰
    "320": "GI",  # 直布罗陀
    "321": "HU",  # 匈牙利
    "322": "IS",  # 冰岛
    "323": "LI",  # 列支敦士登
    "324": "MT",  # 马耳他
    "325": "MC",  # 摩纳哥
    "326": "NO",  # 挪威
    "327": "PL",  # 波兰
    "328": "RO",  # 罗马尼亚
    "329": "SM",  # 圣马力诺
    "330": "SE",  # 瑞典
    "331": "CH",  # 瑞士
    "334": "EE",  # 爱沙尼亚
    "335": "LV",  # 拉脱维亚
    "336": "LT",  # 立陶宛
    "337": "GE",  # 格鲁吉亚
    "338": "AM",  # 亚美尼亚
    "339": "AZ",  # 阿塞拜疆
    "340": "BY",  # 白俄罗斯
    "343": "MD",  # 摩尔多瓦
    "344": "RU",  # 俄罗斯联邦
    "347": "UA",  # 乌克兰
    "350": "SI",  # 斯洛文尼亚
    "351": "HR",  # 克罗地亚
    "352": "CZ",  # 捷克
    "353": "SK",  # 斯洛伐克
    "354": "MK",  # 北马其顿
    "355": "BA",  # 波斯尼亚和黑塞哥维那
    "356": "VA",  # 梵蒂冈
    "357": "FO",  # 法罗群岛
    "358": "RS",  # 塞尔维亚
    "359": "ME",  # 黑山
    # Latin America
    "401": "AG",  # 安提瓜和巴布达
    "402": "AR",  # 阿根廷
    "403": "AW",  # 阿鲁巴
    "404": "BS",  # 巴哈马
    "405": "BB",  # 巴巴多斯
    "406": "BZ",  # 伯利兹
    "408": "BO",  # 玻利维亚
    "409": "BQ",  # 博内尔
    "410": "BR",  # 巴西
    "411": "KY",  # 开曼群岛
    "412": "CL",  # 智利
    "413": "CO",  # 哥伦比亚
    "414": "DM",  # 多米尼克
    "415": "CR",  # 哥斯达黎加
    "416": "CU",  # 古巴
    "417": "CW",  # 库拉索
    "418": "DO",  # 多米尼加共和国
    "419": "EC",  # 厄瓜多尔
    "420": "GF",  # 法属圭亚那
    "421": "GD",  # 格林纳达
    "422": "GP",  # 瓜德罗普
    "423": "GT",  # 危地马拉
    "424": "GY",  # 圭亚那
    "425": "HT",  # 海地
    "426": "HN",  # 洪都拉斯
    "427": "JM",  # 牙买加
    "428": "MQ",  # 马提尼克
    "429": "MX",  # 墨西哥
    "430": "MS",  # 蒙特塞拉特
    "431": "NI",  # 尼加拉瓜
    "432": "PA",  # 巴拿马
    "433": "PY",  # 巴拉圭
    "434": "PE",  # 秘鲁
    "435": "PR",  # 波多黎各
    "436": "BQ",  # 萨巴 (Saba, Caribbean Netherlands like Bonaire)
    "437": "LC",  # 圣卢西亚
    "438": "SX",  # 荷属圣马丁
    "439": "VC",  # 圣文森特和格林纳丁斯
    "440": "SV",  # 萨尔瓦多
    "441": "SR",  # 苏里南
    "442": "TT",  # 特立尼达和多巴哥
    "443": "TC",  # 特克斯和凯科斯群岛
    "444": "UY",  # 乌拉圭
    "445": "VE",  # 委内瑞拉
    "446": "VG",  # 英属维尔京群岛
    "447": "KN",  # 圣基茨和尼维斯
    "448": "PM",  # 圣皮埃尔和密克隆
    # North America
    "501": "CA",  # 加拿大
    "502": "US",  # 美国
    "503": "GL",  # 格陵兰
    "504": "BM",  # 百慕大
    # Oceania
    "601": "AU",  # 澳大利亚
    "602": "CK",  # 库克群岛
    "603": "FJ",  # 斐济
    "606": "NR",  # 瑙鲁
    "607": "NC",  # 新喀里多尼亚
    "608": "VU",  # 瓦努阿图
    "609": "NZ",  # 新西兰
    "610": "NF",  # 诺福克岛
    "611": "PG",  # 巴布亚新几内亚
    "613": "SB",  # 所罗门群岛
    "614": "TO",  # 汤加
    "617": "WS",  # 萨摩亚
    "618": "KI",  # 基里巴斯
    "619": "TV",  # 图瓦卢
    "620": "FM",  # 密克罗尼西亚联邦
    "621": "MH",  # 马绍尔群岛
    "622": "PW",  # 帕劳
    "623": "PF",  # 法属波利尼西亚
    "625": "WF",  # 瓦利斯和富图纳
}

# Codes the customs table defines but that have no ISO 3166-1 country of their own: refused with
# the table's meaning, so the operator sees why rather than "unknown code". Mapping the island
# groups of French Polynesia to PF, or Ceuta/Melilla/Canaries to ES, would be a guess about what
# the sender meant by choosing the finer code.
COUNTRY_CODES_WITHOUT_ISO: dict[str, str] = {
    "199": "亚洲其他国家(地区) other Asia",
    "207": "加那利群岛 Canary Islands",
    "210": "塞卜泰(休达) Ceuta",
    "256": "梅利利亚 Melilla",
    "299": "非洲其他国家(地区) other Africa",
    "399": "欧洲其他国家(地区) other Europe",
    "449": "荷属安地列斯 Netherlands Antilles (dissolved 2010)",
    "499": "拉丁美洲其他国家(地区) other Latin America",
    "599": "北美洲其他国家(地区) other North America",
    "604": "盖比群岛 Gambier Islands",
    "605": "马克萨斯群岛 Marquesas Islands",
    "612": "社会群岛 Society Islands",
    "615": "土阿莫土群岛 Tuamotu Islands",
    "616": "土布艾群岛 Tubuai Islands",
    "699": "大洋洲其他国家(地区) other Oceania",
    "701": "国别不详 country unknown",
    "702": "联合国及机构和国际组织 United Nations and international organisations",
    "999": "中性包装原产国别 neutral packaging",
}

# --- currencies ------------------------------------------------------------------------------
# 海关币制代码 -> ISO 4217. The customs numeric currency code is the customs country code of the
# issuing country (142 China -> CNY, 502 USA -> USD, 344 Russia -> RUB); 300 is the euro. The
# pre-euro European currencies keep their codes in the table and map to their withdrawn ISO codes,
# because old messages and archives still carry them.
CURRENCY_CODES: dict[str, str] = {
    "110": "HKD",  # 港币
    "111": "INR",  # 印度卢比
    "112": "IDR",  # 印度尼西亚卢比
    "113": "IRR",  # 伊朗里亚尔
    "115": "ILS",  # 以色列谢克尔
    "116": "JPY",  # 日本元
    "117": "JOD",  # 约旦第纳尔
    "118": "KWD",  # 科威特第纳尔
    "121": "MOP",  # 澳门元
    "122": "MYR",  # 马来西亚林吉特
    "124": "MNT",  # 蒙古图格里克
    "125": "NPR",  # 尼泊尔卢比
    "127": "PKR",  # 巴基斯坦卢比
    "129": "PHP",  # 菲律宾比索
    "130": "QAR",  # 卡塔尔里亚尔
    "131": "SAR",  # 沙特里亚尔
    "132": "SGD",  # 新加坡元
    "133": "KRW",  # 韩国圆
    "134": "LKR",  # 斯里兰卡卢比
    "136": "THB",  # 泰国铢
    "137": "TRY",  # 土耳其里拉
    "138": "AED",  # 阿联酋迪拉姆
    "141": "VND",  # 越南盾
    "142": "CNY",  # 人民币
    "143": "TWD",  # 新台币
    "145": "KZT",  # 哈萨克斯坦坚戈
    "146": "KGS",  # 吉尔吉斯斯坦索姆
    "149": "UZS",  # 乌兹别克斯坦苏姆
    "215": "EGP",  # 埃及镑
    "224": "KES",  # 肯尼亚先令
    "232": "MAD",  # 摩洛哥迪拉姆
    "236": "NGN",  # 尼日利亚奈拉
    "244": "ZAR",  # 南非兰特
    "300": "EUR",  # 欧元
    "301": "BEF",  # 比利时法郎 (withdrawn, euro)
    "302": "DKK",  # 丹麦克朗
    "303": "GBP",  # 英镑
    "304": "DEM",  # 德国马克 (withdrawn, euro)
    "305": "FRF",  # 法国法郎 (withdrawn, euro)
    "306": "IEP",  # 爱尔兰镑 (withdrawn, euro)
    "307": "ITL",  # 意大利里拉 (withdrawn, euro)
    "308": "LUF",  # 卢森堡法郎 (withdrawn, euro)
    "309": "NLG",  # 荷兰盾 (withdrawn, euro)
    "310": "GRD",  # 希腊德拉马克 (withdrawn, euro)
    "311": "PTE",  # 葡萄牙埃斯库多 (withdrawn, euro)
    "312": "ESP",  # 西班牙比塞塔 (withdrawn, euro)
    "315": "ATS",  # 奥地利先令 (withdrawn, euro)
    "316": "BGN",  # 保加利亚列弗
    "318": "FIM",  # 芬兰马克 (withdrawn, euro)
    "321": "HUF",  # 匈牙利福林
    "322": "ISK",  # 冰岛克朗
    "326": "NOK",  # 挪威克朗
    "327": "PLN",  # 波兰兹罗提
    "328": "RON",  # 罗马尼亚列伊
    "330": "SEK",  # 瑞典克朗
    "331": "CHF",  # 瑞士法郎
    "340": "BYN",  # 白俄罗斯卢布
    "344": "RUB",  # 俄罗斯卢布
    "347": "UAH",  # 乌克兰格里夫纳
    "351": "HRK",  # 克罗地亚库纳 (withdrawn 2023, euro)
    "352": "CZK",  # 捷克克朗
    "358": "RSD",  # 塞尔维亚第纳尔
    "402": "ARS",  # 阿根廷比索
    "410": "BRL",  # 巴西雷亚尔
    "412": "CLP",  # 智利比索
    "413": "COP",  # 哥伦比亚比索
    "429": "MXN",  # 墨西哥比索
    "434": "PEN",  # 秘鲁索尔
    "501": "CAD",  # 加拿大元
    "502": "USD",  # 美元
    "601": "AUD",  # 澳大利亚元
    "609": "NZD",  # 新西兰元
}

# Currencies in the customs table with no ISO 4217 equivalent: refused with their meaning.
CURRENCY_CODES_WITHOUT_ISO: dict[str, str] = {
    "398": "清算瑞士法郎 clearing Swiss franc (bilateral clearing unit)",
}

_ISO_COUNTRIES = frozenset(COUNTRY_CODES.values())
_ISO_CURRENCIES = frozenset(CURRENCY_CODES.values())


class CodeError(ValueError):
    """A customs code the tables do not hold (or hold without an ISO equivalent)."""


def country_iso(value: str) -> str:
    """ISO 3166-1 alpha-2 for a customs country code, or for a value that is already alpha-2."""
    code = value.strip()
    if code in COUNTRY_CODES:
        return COUNTRY_CODES[code]
    if code.upper() in _ISO_COUNTRIES:
        return code.upper()
    if code in COUNTRY_CODES_WITHOUT_ISO:
        raise CodeError(
            f"customs country code {code!r} ({COUNTRY_CODES_WITHOUT_ISO[code]}) has no ISO country"
        )
    raise CodeError(f"unknown customs country code {code!r}")


def currency_iso(value: str) -> str:
    """ISO 4217 for a customs currency code, or for a value that is already ISO 4217."""
    code = value.strip()
    if code in CURRENCY_CODES:
        return CURRENCY_CODES[code]
    if code.upper() in _ISO_CURRENCIES:
        return code.upper()
    if code in CURRENCY_CODES_WITHOUT_ISO:
        raise CodeError(
            f"customs currency code {code!r} ({CURRENCY_CODES_WITHOUT_ISO[code]}) "
            "has no ISO currency"
        )
    raise CodeError(f"unknown customs currency code {code!r}")


# --- receipts (回执) returnStatus --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReturnStatus:
    """What one returnStatus means; event codes are empty when the receipt moves no status."""

    meaning: str
    import_code: str
    export_code: str


# returnStatus per the CEB specification ("操作结果：1电子口岸已暂存/2电子口岸申报中/
# 3发送海关成功/4发送海关失败/100海关退单/120海关入库/300人工审核/399海关审结/500查验/
# 501扣留移送通关/502扣留移送缉私/503扣留移送法规/599其它扣留/700退运/800放行/899结关；
# 若小于0数字表示处理异常回执").
# Decisions:
# - 1 (stored as a draft at the China E-port) has not reached customs: no event; the receipt is
#   kept as a customs_document so nothing is lost.
# - 2, 3 and 120 all say "the declaration is on its way to / accepted by customs": *_submitted.
# - 399 审结 means customs finished examining the declaration; for cross-border inventories the
#   release (800) is a separate, later receipt, so 399 is still *_submitted, never *_cleared.
# - 4 (the e-port could not deliver the declaration to customs) needs an operator to resend:
#   exception. Negative statuses are processing errors (malformed data): exception.
# - 300 manual review, 500 inspection and 501/502/503/599 detentions stop the parcel: *_held.
# - 700 退运 is customs ordering the goods shipped back: "returning" (the way back has started;
#   "returned" would claim the sender already has them).
# - 800 放行 release and 899 结关 closing (only ever after release): *_cleared.
RETURN_STATUSES: dict[str, ReturnStatus] = {
    "1": ReturnStatus("电子口岸已暂存 stored at the e-port, not declared", "", ""),
    "2": ReturnStatus(
        "电子口岸申报中 being declared",
        "customs_import_submitted",
        "customs_export_submitted",
    ),
    "3": ReturnStatus(
        "发送海关成功 sent to customs",
        "customs_import_submitted",
        "customs_export_submitted",
    ),
    "4": ReturnStatus("发送海关失败 sending to customs failed", "exception", "exception"),
    "100": ReturnStatus(
        "海关退单 rejected by customs", "customs_rejected", "customs_export_rejected"
    ),
    "120": ReturnStatus(
        "海关入库 accepted by customs",
        "customs_import_submitted",
        "customs_export_submitted",
    ),
    "300": ReturnStatus("人工审核 manual review", "customs_held", "customs_export_held"),
    "399": ReturnStatus(
        "海关审结 examination concluded",
        "customs_import_submitted",
        "customs_export_submitted",
    ),
    "500": ReturnStatus("查验 inspection", "customs_held", "customs_export_held"),
    "501": ReturnStatus(
        "扣留移送通关 detained, sent to clearance",
        "customs_held",
        "customs_export_held",
    ),
    "502": ReturnStatus(
        "扣留移送缉私 detained, sent to anti-smuggling",
        "customs_held",
        "customs_export_held",
    ),
    "503": ReturnStatus(
        "扣留移送法规 detained, sent to legal", "customs_held", "customs_export_held"
    ),
    "599": ReturnStatus("其它扣留 detained (other)", "customs_held", "customs_export_held"),
    "700": ReturnStatus("退运 ordered returned", "returning", "returning"),
    "800": ReturnStatus("放行 released", "customs_import_cleared", "customs_export_cleared"),
    "899": ReturnStatus("结关 closed", "customs_import_cleared", "customs_export_cleared"),
}

NEGATIVE_RETURN_STATUS = ReturnStatus("处理异常 processing error", "exception", "exception")


def return_status(value: str) -> ReturnStatus:
    """The meaning of a receipt's returnStatus; CodeError for a code the specification lacks."""
    code = value.strip()
    if code in RETURN_STATUSES:
        return RETURN_STATUSES[code]
    if code.startswith("-") and code[1:].isdigit():
        return NEGATIVE_RETURN_STATUS
    raise CodeError(f"unknown returnStatus {code!r}")


# --- CEB513 logisticsStatus --------------------------------------------------------------------
# The specification defines one value: "物流签收状态，限定S" (S = signed for by the consignee).
# The public sample uses "R", which no version of the specification defines (older integrators
# read it as "rejected" or as "picked up", the two readings contradict each other): refused.
LOGISTICS_STATUSES: dict[str, tuple[str, str]] = {
    "S": ("delivered", "签收 signed for by the consignee"),
}
