"""A small traditional → simplified character table (no extra dependency).

It covers the traditional characters that occur in the grammars and test corpora, Shanghainese
written forms (個 對 曉 講 儂 嘸 …) and about 785 common everyday characters, so that a phrase
typed in traditional characters, or a recogniser that outputs them, still matches.  Characters
that have no entry pass through unchanged.  A grammar phrase containing a traditional character
that is *not* in this table still works when the caller's text uses the same character; add the
pair here when a test or a recorded call shows it is needed.  (For full coverage the PyPI package
``opencc-purepy`` could replace this table; the project does not depend on it today.)
"""
from __future__ import annotations

_PAIRS = (
    "來来係系個个們们側侧傘伞備备傳传傷伤價价儂侬億亿儕侪優优儲储兇凶兒儿內内兩两別别則则劃划劇剧劉刘勁劲動动務务勝胜勞劳勵励匯汇區区協协卻却參参叢丛吳吴呂吕員员問问"
    "啞哑啟启喪丧喫吃單单喲哟嗎吗嗚呜嘆叹嘔呕嘩哗嘸呒嚇吓嚜么嚴严囉啰國国圍围園园圓圆圖图團团執执堅坚報报場场塊块塗涂塵尘墊垫壇坛壓压壞坏壯壮壺壶夠够夢梦奪夺奮奋婁娄"
    "婦妇媽妈嬰婴孫孙學学實实寧宁審审寫写寬宽寶宝將将專专尋寻對对導导屆届屍尸層层屬属島岛峽峡崗岗嶺岭帥帅師师帳帐帶带幣币幫帮幹干幾几庫库廁厕廚厨廟庙廠厂廢废廣广廳厅"
    "張张強强彈弹彙汇彥彦後后徑径從从復复徵征徹彻恆恒惡恶惱恼惲恽愛爱態态慘惨慣惯慶庆憂忧憑凭憶忆應应懶懒懷怀懸悬戀恋戰战戲戏戶户換换揮挥損损搖摇搶抢撐撑撥拨撿捡擁拥"
    "擇择擔担據据擠挤擬拟擴扩擺摆擾扰攔拦攜携攤摊數数斷断於于時时晝昼暈晕曉晓書书會会東东條条楊杨業业極极榮荣構构槍枪槳桨樂乐樓楼標标樣样樹树橋桥機机檔档檢检櫃柜欄栏"
    "權权歎叹歐欧歡欢歲岁歷历歸归殘残殺杀殼壳毀毁氣气決决沒没沖冲況况涼凉淚泪淨净淺浅測测渾浑湯汤準准溝沟溫温滅灭滬沪滯滞滾滚滿满漁渔漢汉漲涨潑泼潔洁潛潜澆浇濃浓濕湿"
    "濟济灑洒灘滩灣湾災灾為为烏乌無无煉炼煙烟煩烦熱热燈灯燒烧燙烫營营爐炉爭争爲为爺爷牆墙牽牵犧牺狀状狹狭猶犹獎奖獨独獲获獻献現现瑣琐瑪玛環环璽玺瓊琼甕瓮產产畢毕畫画"
    "異异當当疊叠療疗癡痴癢痒發发皺皱盃杯盜盗盡尽監监盤盘盧卢眾众睏困睜睁瞭了矯矫確确碼码磚砖礙碍礦矿禍祸禪禅禮礼禱祷稅税種种稱称穀谷積积穩稳窩窝窮穷窯窑竊窃競竞筆笔"
    "筍笋箏筝節节範范築筑簡简簽签簾帘籃篮籤签粵粤糞粪糧粮糰团糾纠紀纪約约紅红純纯紗纱紙纸級级紛纷紡纺紮扎細细紹绍終终組组結结絕绝絡络給给絨绒統统絲丝綁绑經经綜综綠绿"
    "維维綱纲網网綿绵緊紧緒绪線线緣缘編编緩缓緯纬練练縣县縫缝縮缩總总績绩繆缪織织繞绕繩绳繫系繳缴繼继續续纏缠缽钵罰罚罷罢羅罗羨羡義义習习翹翘聖圣聞闻聯联聰聪聲声聳耸"
    "職职聽听肅肃脅胁脈脉脫脱脹胀腎肾腦脑腫肿腳脚膚肤膠胶膽胆臉脸臟脏臥卧臨临臺台與与興兴舉举舊旧艙舱艦舰艱艰莊庄華华萊莱萬万葉叶蓋盖蔣蒋蔥葱蕩荡蕭萧薦荐藍蓝藝艺藥药"
    "蘇苏蘋苹蘭兰蘿萝處处虛虚號号蝕蚀蝦虾螞蚂蟲虫蠟蜡術术衛卫衝冲裏里補补裝装裡里製制複复褲裤襪袜襯衬見见規规視视親亲覺觉覽览觀观訂订計计訊讯討讨訓训託托記记訪访設设"
    "許许診诊証证評评詞词詢询試试詩诗話话該该詳详誇夸誌志認认誒诶誕诞語语誠诚誤误說说誰谁課课調调談谈請请諒谅論论諮咨諸诸謀谋謂谓謊谎講讲謝谢謠谣證证識识譜谱譯译議议"
    "護护讀读變变讓让讚赞豎竖豐丰豬猪貓猫貝贝貞贞負负財财貧贫貨货貫贯責责貳贰貴贵買买費费貼贴貿贸賀贺賁贲資资賈贾賊贼賓宾賞赏賠赔賢贤賣卖質质賬账賴赖購购賽赛贈赠贊赞"
    "贏赢趕赶趙赵趨趋跡迹踐践蹤踪躍跃軀躯車车軌轨軍军軟软較较載载輔辅輕轻輛辆輩辈輪轮輯辑輸输轄辖轉转轟轰辦办辭辞辯辩農农這这連连週周進进遊游運运過过達达遞递遠远適适"
    "遲迟遷迁選选遺遗邁迈還还邊边邏逻郵邮鄉乡鄒邹鄔邬鄧邓鄭郑醃腌醜丑醫医釀酿釋释針针釣钓鈔钞鈕钮鈴铃鉛铅銀银銅铜銳锐銷销鋒锋鋪铺鋼钢錄录錢钱錦锦錯错錶表鍊炼鍋锅鍛锻"
    "鍵键鍾钟鎊镑鎖锁鎮镇鏈链鏡镜鐘钟鐵铁鑰钥鑽钻長长門门閃闪閉闭開开閒闲間间閔闵閣阁閱阅闆板闊阔闖闯關关闡阐陣阵陰阴陳陈陸陆陽阳隊队階阶際际隨随險险隱隐隻只雖虽雙双"
    "雜杂雞鸡離离難难雲云電电霧雾靂雳靈灵靜静韋韦韌韧韓韩韻韵響响頁页頂顶項项順顺須须預预頑顽頓顿領领頭头頸颈頻频顆颗題题額额顏颜願愿顛颠類类顧顾顯显風风颱台颳刮飄飘"
    "飛飞飩饨飯饭飲饮飼饲飽饱飾饰餃饺餅饼養养餓饿餘余餛馄館馆饅馒饑饥馬马馮冯駕驾駛驶駱骆騎骑騙骗騰腾驅驱驗验驚惊驢驴骯肮髒脏體体髮发鬆松鬍胡鬥斗鬧闹鬱郁魚鱼魯鲁鮑鲍"
    "鮮鲜鯉鲤鳥鸟鳳凤鳴鸣鴨鸭鴿鸽鵝鹅鵡鹉鶴鹤鹽盐麗丽麥麦麵面麼么黃黄點点黨党齊齐齒齿齡龄龍龙龐庞龔龚龜龟"
)

T2S: dict[int, str] = {ord(_PAIRS[i]): _PAIRS[i + 1] for i in range(0, len(_PAIRS), 2)}


def to_simplified(text: str) -> str:
    """Replace the traditional characters this table knows by their simplified forms."""
    return text.translate(T2S)
